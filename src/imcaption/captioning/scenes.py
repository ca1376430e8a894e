"""A synthetic COCO-format captioning set: 1-3 colored shapes on textured backgrounds, several captions per
image, and each object's bounding box in a side file (for attention-grounding checks)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from imcaption.engine.progress import progress_bar
from imcaption.files import remove_dead_temps, write_atomically, write_text_atomically
from imcaption.locks import folder_lock
from imcaption.manifest import check_claimable, claim_folder, mark_complete

SCENES_VERSION = 1  # raise when the same (seed, index) would draw another scene
SHAPES = ("circle", "square", "triangle", "diamond")
COLORS = {
    "red": (215, 38, 38),
    "green": (34, 160, 60),
    "blue": (38, 80, 215),
    "yellow": (236, 200, 24),
    "purple": (135, 55, 180),
    "orange": (240, 128, 24),
}
SIZES = {"small": (0.14, 0.2), "large": (0.28, 0.36)}
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SceneObject:
    shape: str
    color: str
    size: str
    bbox: tuple[int, int, int, int]  # COCO order: x, y, width, height

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.bbox
        return x + w / 2, y + h / 2


@dataclass(frozen=True)
class Scene:
    image: Image.Image
    objects: tuple[SceneObject, ...]
    captions: tuple[str, ...]


def _background(rng: np.random.Generator, side: int) -> np.ndarray:
    base = rng.integers(150, 240, size=3)
    texture = rng.normal(0, 10, size=(side, side, 1))
    kind = rng.integers(3)
    ys, xs = np.mgrid[0:side, 0:side]
    if kind == 0:  # stripes
        period, angle = rng.uniform(6, 16), rng.uniform(0, np.pi)
        texture = texture + 14 * np.sin((xs * np.cos(angle) + ys * np.sin(angle)) * 2 * np.pi / period)[..., None]
    elif kind == 1:  # checks
        cell = int(rng.integers(8, 20))
        texture = texture + 12 * (((xs // cell + ys // cell) % 2) * 2 - 1)[..., None]
    return np.clip(base + texture, 0, 255).astype(np.uint8)


def _place(rng: np.random.Generator, side: int, taken: list[tuple[int, int, int, int]], size: str) -> tuple | None:
    low, high = SIZES[size]
    for _ in range(50):
        extent = int(side * rng.uniform(low, high))
        x, y = (int(v) for v in rng.integers(2, side - extent - 2, size=2))
        box = (x, y, extent, extent)
        if all(
            x + extent + 4 < bx or bx + bw + 4 < x or y + extent + 4 < by or by + bh + 4 < y for bx, by, bw, bh in taken
        ):
            return box
    return None


def _draw(draw: ImageDraw.ImageDraw, obj: SceneObject) -> None:
    x, y, w, h = obj.bbox
    fill, outline = COLORS[obj.color], (40, 40, 40)
    if obj.shape == "circle":
        draw.ellipse([x, y, x + w, y + h], fill=fill, outline=outline)
    elif obj.shape == "square":
        draw.rectangle([x, y, x + w, y + h], fill=fill, outline=outline)
    elif obj.shape == "triangle":
        draw.polygon([(x + w / 2, y), (x + w, y + h), (x, y + h)], fill=fill, outline=outline)
    else:
        corners = [(x + w / 2, y), (x + w, y + h / 2), (x + w / 2, y + h), (x, y + h / 2)]
        draw.polygon(corners, fill=fill, outline=outline)


def _phrase(obj: SceneObject, rng: np.random.Generator) -> str:
    """The object with its article: "a small red circle", "an orange square"."""
    words = f"{obj.size} {obj.color} {obj.shape}" if rng.random() < 0.6 else f"{obj.color} {obj.shape}"
    return ("an " if words[0] in "aeiou" else "a ") + words


def _relation(a: SceneObject, b: SceneObject) -> str:
    (ax, ay), (bx, by) = a.center, b.center
    if abs(ax - bx) >= abs(ay - by):
        return "to the left of" if ax < bx else "to the right of"
    return "above" if ay < by else "below"


def describe(objects: tuple[SceneObject, ...], rng: np.random.Generator, count: int = 5) -> tuple[str, ...]:
    """`count` different captions, each naming every object's color and shape."""
    captions: list[str] = []
    for _ in range(count * 4):
        if len(captions) == count:
            break
        p = [_phrase(o, rng) for o in objects]
        if len(objects) == 1:
            options = [
                f"{p[0]}",
                f"{p[0]} on a textured background",
                f"there is {p[0]} in the picture",
                f"a picture of {p[0]}",
                f"just {p[0]}",
            ]
        elif len(objects) == 2:
            rel = _relation(objects[0], objects[1])
            back = _relation(objects[1], objects[0])
            options = [
                f"{p[0]} {rel} {p[1]}",
                f"{p[1]} {back} {p[0]}",
                f"{p[0]} and {p[1]}",
                f"two shapes {p[0]} and {p[1]}",
                f"there is {p[1]} and {p[0]}",
            ]
        else:
            rel = _relation(objects[0], objects[1])
            options = [
                f"{p[0]} {p[1]} and {p[2]}",
                f"three shapes {p[0]} {p[1]} and {p[2]}",
                f"{p[0]} {rel} {p[1]} and {p[2]}",
                f"{p[2]} with {p[0]} and {p[1]}",
            ]
        caption = options[int(rng.integers(len(options)))]
        if caption not in captions:
            captions.append(caption)
    return tuple(captions)


def render_scene(seed: int, index: int, side: int = 128) -> Scene:
    rng = np.random.default_rng([seed, index])
    image = Image.fromarray(_background(rng, side))
    draw = ImageDraw.Draw(image)
    objects: list[SceneObject] = []
    for _ in range(int(rng.integers(1, 4))):
        size = ("small", "large")[int(rng.integers(2))]
        box = _place(rng, side, [o.bbox for o in objects], size)
        if box is None:
            continue
        obj = SceneObject(
            SHAPES[int(rng.integers(len(SHAPES)))], list(COLORS)[int(rng.integers(len(COLORS)))], size, box
        )
        _draw(draw, obj)
        objects.append(obj)
    return Scene(image, tuple(objects), describe(tuple(objects), rng))


def generate_scenes(
    out_dir: str | Path,
    count: int = 6000,
    seed: int = 0,
    side: int = 128,
    val_fraction: float = 0.1,
    test_count: int | None = None,
    progress: bool = True,
) -> None:
    """OUT_DIR/images/s{i}.png, annotations/captions_{train,val,test}.json (COCO format) and
    annotations/objects.json (image id -> shapes with COCO [x, y, w, h] boxes); then the manifest, marked
    complete. `count` images are split into train and val (the last val_fraction: what training selects its
    checkpoint on); `test_count` more (default 10 % of count) form the test split that no choice looks at.
    A rerun with the same settings redraws only missing images; other settings are refused."""
    out = Path(out_dir)
    test_count = max(1, round(count * 0.1)) if test_count is None else test_count
    if count < 2 or test_count < 0:
        raise ValueError(f"need at least 2 scenes for train and val and a test count >= 0, got {count}, {test_count}")
    out.mkdir(parents=True, exist_ok=True)
    check_claimable(out, _wanted(count, seed, side, val_fraction, test_count), foreign=_holds_a_dataset(out))
    with folder_lock(out, "generating scenes"):  # made only once the folder is known to be ours
        _generate_locked(out, count, seed, side, val_fraction, test_count, progress)


def _wanted(count: int, seed: int, side: int, val_fraction: float, test_count: int) -> dict:
    return {"kind": "imcaption-scenes-dataset", "generator_version": SCENES_VERSION, "seed": seed,
            "count": count, "side": side, "val_fraction": val_fraction, "test_count": test_count}  # fmt: skip


def _holds_a_dataset(out: Path) -> bool:
    return (out / "annotations").exists() or (out / "images").exists()


def _generate_locked(out: Path, count: int, seed: int, side: int, val_fraction: float, test_count: int,
                     progress: bool) -> None:  # fmt: skip
    wanted = _wanted(count, seed, side, val_fraction, test_count)
    claim_folder(out, wanted, foreign=_holds_a_dataset(out))
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "annotations").mkdir(exist_ok=True)
    remove_dead_temps(out / "images")
    val_start = count - max(1, round(count * val_fraction))
    splits: dict[str, dict[str, list]] = {name: {"images": [], "annotations": []} for name in SPLITS}
    objects: dict[str, list[dict]] = {}
    for index in progress_bar(enabled=progress, iterable=range(count + test_count), desc="scenes", unit="img"):
        scene = render_scene(seed, index, side)
        name = f"s{index}.png"
        path = out / "images" / name
        if not path.exists():
            write_atomically(path, lambda temp, image=scene.image: image.save(temp, format="PNG"), durable=False)
        split = splits["train" if index < val_start else "val" if index < count else "test"]
        split["images"].append({"id": index, "file_name": name, "width": side, "height": side})
        for caption in scene.captions:
            split["annotations"].append({"id": len(split["annotations"]), "image_id": index, "caption": caption})
        objects[str(index)] = [asdict(o) for o in scene.objects]
    for name, content in splits.items():
        if content["images"]:
            write_text_atomically(out / "annotations" / f"captions_{name}.json", json.dumps(content))
    write_text_atomically(out / "annotations" / "objects.json", json.dumps(objects))
    mark_complete(out, wanted)
