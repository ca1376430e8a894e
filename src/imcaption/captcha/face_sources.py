"""The candidate faces of the universal style: the PyPI font packages that ship them, pinned (the `faces` extra of
pyproject.toml lists the same versions; tests/test_universal_style.py checks both), and the family each package's
faces belong to.

The families follow the real words_captcha classes and what else captchas are drawn in: plain sans, serif, slab,
mono, hand (felt marker and casual handwriting), connected script, calligraphic script and display. Most packages
are Google Fonts families packaged by fontpkg; their own metadata names a category (SANS_SERIF, SERIF, DISPLAY,
HANDWRITING, MONOSPACE), which the table follows except where it is too coarse: HANDWRITING is split into hand,
script and calligraphic by looking at the faces; slab serifs, the heavy connected scripts filed under DISPLAY and
the techno, stencil and condensed display faces filed under SANS_SERIF are moved to their family.

Packages left out: the largest (Lato, Merriweather, Fira Sans, the Noto families, Source Sans/Serif Pro, Alegreya
Sans: 2-6 MB each) and the other sans, serif and Thai/Devanagari-with-Latin families over 0.6 MB, which add weights
of one design rather than designs; the fonts of other scripts (Arabic, Devanagari, Tamil, Telugu, Thai, Khmer
only); Font Awesome (icons). A few packages are candidates that the legibility check refuses (Bebas Neue, Bungee,
Luckiest Guy and Permanent Marker are all caps, Cinzel and Amatic SC small caps): they show what it refuses, and
weigh 0.4 MB together.

Edit this table, pin the same version in pyproject.toml, install, and rerun
`python -m imcaption.captcha.face_build --write` to recompute universal_faces.json.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CANDIDATES", "FacePackage"]


@dataclass(frozen=True)
class FacePackage:
    version: str  # the pinned version, as pyproject.toml's faces extra names it
    family: str  # one of face_list.UNIVERSAL_FAMILIES


CANDIDATES: dict[str, FacePackage] = {
    # sans: 77
    "fontpkg-abeezee": FacePackage("1.3", "sans"),
    "fontpkg-abel": FacePackage("1.3", "sans"),
    "fontpkg-albert-sans": FacePackage("1.25", "sans"),
    "fontpkg-archivo": FacePackage("2.1", "sans"),
    "fontpkg-archivo-black": FacePackage("1.6", "sans"),
    "fontpkg-archivo-narrow": FacePackage("3.2", "sans"),
    "fontpkg-asap": FacePackage("3.2", "sans"),
    "fontpkg-assistant": FacePackage("3.0", "sans"),
    "fontpkg-atkinson-hyperlegible": FacePackage("1.6", "sans"),
    "fontpkg-bricolage-grotesque": FacePackage("1.1", "sans"),
    "fontpkg-cabin": FacePackage("3.1", "sans"),
    "fontpkg-cairo": FacePackage("3.130", "sans"),
    "fontpkg-catamaran": FacePackage("2.0", "sans"),
    "fontpkg-chivo": FacePackage("2.2", "sans"),
    "fontpkg-dm-sans": FacePackage("4.4", "sans"),
    "fontpkg-dosis": FacePackage("3.2", "sans"),
    "fontpkg-encode-sans": FacePackage("3.2", "sans"),
    "fontpkg-epilogue": FacePackage("2.112", "sans"),
    "fontpkg-exo": FacePackage("2.1", "sans"),
    "fontpkg-exo-2": FacePackage("2.10", "sans"),
    "fontpkg-figtree": FacePackage("2.2", "sans"),
    "fontpkg-fjalla-one": FacePackage("1.2", "sans"),
    "fontpkg-fredoka": FacePackage("2.1", "sans"),
    "fontpkg-geist": FacePackage("1.800", "sans"),
    "fontpkg-geologica": FacePackage("1.10", "sans"),
    "fontpkg-hammersmith-one": FacePackage("1.3", "sans"),
    "fontpkg-hanken-grotesk": FacePackage("3.13", "sans"),
    "fontpkg-heebo": FacePackage("3.100", "sans"),
    "fontpkg-instrument-sans": FacePackage("1.0", "sans"),
    "fontpkg-josefin-sans": FacePackage("2.1", "sans"),
    "fontpkg-jost": FacePackage("3.710", "sans"),
    "fontpkg-karla": FacePackage("2.4", "sans"),
    "fontpkg-league-spartan": FacePackage("2.2", "sans"),
    "fontpkg-lexend": FacePackage("1.7", "sans"),
    "fontpkg-lexend-deca": FacePackage("1.7", "sans"),
    "fontpkg-libre-franklin": FacePackage("3.0", "sans"),
    "fontpkg-manrope": FacePackage("4.505", "sans"),
    "fontpkg-maven-pro": FacePackage("2.103", "sans"),
    "fontpkg-merriweather-sans": FacePackage("2.1", "sans"),
    "fontpkg-mulish": FacePackage("3.603", "sans"),
    "fontpkg-news-cycle": FacePackage("0.510", "sans"),
    "fontpkg-nunito": FacePackage("3.602", "sans"),
    "fontpkg-nunito-sans": FacePackage("3.101", "sans"),
    "fontpkg-onest": FacePackage("2.1", "sans"),
    "fontpkg-open-sans": FacePackage("3.3", "sans"),
    "fontpkg-oswald": FacePackage("4.103", "sans"),
    "fontpkg-outfit": FacePackage("1.100", "sans"),
    "fontpkg-overpass": FacePackage("4.0", "sans"),
    "fontpkg-oxygen": FacePackage("0.201", "sans"),
    "fontpkg-play": FacePackage("2.101", "sans"),
    "fontpkg-plus-jakarta-sans": FacePackage("2.71", "sans"),
    "fontpkg-pt-sans": FacePackage("2.3", "sans"),
    "fontpkg-pt-sans-narrow": FacePackage("2.3", "sans"),
    "fontpkg-public-sans": FacePackage("2.1", "sans"),
    "fontpkg-questrial": FacePackage("2.0", "sans"),
    "fontpkg-quicksand": FacePackage("3.6", "sans"),
    "fontpkg-raleway": FacePackage("4.26", "sans"),
    "fontpkg-red-hat-display": FacePackage("1.30", "sans"),
    "fontpkg-red-hat-text": FacePackage("1.30", "sans"),
    "fontpkg-rethink-sans": FacePackage("1.1", "sans"),
    "fontpkg-roboto": FacePackage("3.15", "sans"),
    "fontpkg-roboto-condensed": FacePackage("3.8", "sans"),
    "fontpkg-rubik": FacePackage("2.300", "sans"),
    "fontpkg-saira": FacePackage("1.101", "sans"),
    "fontpkg-saira-condensed": FacePackage("0.72", "sans"),
    "fontpkg-schibsted-grotesk": FacePackage("1.100", "sans"),
    "fontpkg-signika": FacePackage("2.3", "sans"),
    "fontpkg-sofia-sans": FacePackage("4.101", "sans"),
    "fontpkg-sora": FacePackage("2.0", "sans"),
    "fontpkg-source-sans-3": FacePackage("3.52", "sans"),
    "fontpkg-space-grotesk": FacePackage("2.0", "sans"),
    "fontpkg-titillium-web": FacePackage("1.2", "sans"),
    "fontpkg-unbounded": FacePackage("1.701", "sans"),
    "fontpkg-urbanist": FacePackage("1.303", "sans"),
    "fontpkg-varela-round": FacePackage("3.10", "sans"),
    "fontpkg-viga": FacePackage("1.1", "sans"),
    "fontpkg-work-sans": FacePackage("2.12", "sans"),
    # serif: 22
    "font-caladea": FacePackage("0.0.2", "serif"),
    "fontpkg-andada-pro": FacePackage("3.3", "serif"),
    "fontpkg-bodoni-moda": FacePackage("2.5", "serif"),
    "fontpkg-cardo": FacePackage("1.45", "serif"),
    "fontpkg-cinzel": FacePackage("2.0", "serif"),
    "fontpkg-cormorant": FacePackage("4.0", "serif"),
    "fontpkg-cormorant-garamond": FacePackage("4.1", "serif"),
    "fontpkg-crimson-pro": FacePackage("1.3", "serif"),
    "fontpkg-crimson-text": FacePackage("1.100", "serif"),
    "fontpkg-dm-serif-display": FacePackage("5.200", "serif"),
    "fontpkg-dm-serif-text": FacePackage("5.200", "serif"),
    "fontpkg-domine": FacePackage("2.0", "serif"),
    "fontpkg-frank-ruhl-libre": FacePackage("6.4", "serif"),
    "fontpkg-fraunces": FacePackage("1.0", "serif"),
    "fontpkg-instrument-serif": FacePackage("1.0", "serif"),
    "fontpkg-libre-baskerville": FacePackage("2.5", "serif"),
    "fontpkg-lora": FacePackage("3.8", "serif"),
    "fontpkg-marcellus": FacePackage("1.0", "serif"),
    "fontpkg-newsreader": FacePackage("1.3", "serif"),
    "fontpkg-playfair-display": FacePackage("1.203", "serif"),
    "fontpkg-pt-serif": FacePackage("1.0", "serif"),
    "fontpkg-vollkorn": FacePackage("5.1", "serif"),
    # slab: 8
    "fontpkg-alfa-slab-one": FacePackage("2.0", "slab"),
    "fontpkg-antic-slab": FacePackage("1.2", "slab"),
    "fontpkg-arvo": FacePackage("1.6", "slab"),
    "fontpkg-bitter": FacePackage("3.21", "slab"),
    "fontpkg-roboto-slab": FacePackage("2.2", "slab"),
    "fontpkg-sanchez": FacePackage("1.1", "slab"),
    "fontpkg-slabo-27px": FacePackage("1.20", "slab"),
    "fontpkg-zilla-slab": FacePackage("1.2", "slab"),
    # mono: 8
    "fontpkg-dm-mono": FacePackage("1.0", "mono"),
    "fontpkg-fira-code": FacePackage("5.2.post1", "mono"),
    "fontpkg-geist-mono": FacePackage("1.701", "mono"),
    "fontpkg-inconsolata": FacePackage("3.1", "mono"),
    "fontpkg-jetbrains-mono": FacePackage("2.211", "mono"),
    "fontpkg-roboto-mono": FacePackage("3.1", "mono"),
    "fontpkg-source-code-pro": FacePackage("1.26", "mono"),
    "fontpkg-space-mono": FacePackage("1.3", "mono"),
    # hand: 9
    "font-amatic-sc": FacePackage("0.0.4", "hand"),
    "font-intuitive": FacePackage("0.0.4", "hand"),
    "fontpkg-caveat": FacePackage("2.0", "hand"),
    "fontpkg-delius": FacePackage("1.1", "hand"),
    "fontpkg-indie-flower": FacePackage("2.0", "hand"),
    "fontpkg-kalam": FacePackage("2.1", "hand"),
    "fontpkg-permanent-marker": FacePackage("1.1", "hand"),
    "fontpkg-shadows-into-light": FacePackage("1.0", "hand"),
    "fontpkg-zeyada": FacePackage("1.2", "hand"),
    # script: 5
    "fontpkg-dancing-script": FacePackage("2.1", "script"),
    "fontpkg-lobster": FacePackage("2.100", "script"),
    "fontpkg-lobster-two": FacePackage("1.6", "script"),
    "fontpkg-oleo-script": FacePackage("1.2", "script"),
    "fontpkg-pacifico": FacePackage("3.1", "script"),
    # calligraphic: 3
    "fontpkg-great-vibes": FacePackage("1.103", "calligraphic"),
    "fontpkg-satisfy": FacePackage("1.1", "calligraphic"),
    "fontpkg-yellowtail": FacePackage("1.2", "calligraphic"),
    # display: 26
    "font-fredoka-one": FacePackage("0.0.4", "display"),
    "fontpkg-abril-fatface": FacePackage("1.1", "display"),
    "fontpkg-acme": FacePackage("1.2", "display"),
    "fontpkg-alumni-sans": FacePackage("1.18", "display"),
    "fontpkg-anton": FacePackage("2.116", "display"),
    "fontpkg-baloo-2": FacePackage("1.700", "display"),
    "fontpkg-bebas-neue": FacePackage("2.0", "display"),
    "fontpkg-black-ops-one": FacePackage("1.4", "display"),
    "fontpkg-bungee": FacePackage("2.0", "display"),
    "fontpkg-chakra-petch": FacePackage("1.0", "display"),
    "fontpkg-changa-one": FacePackage("1.3", "display"),
    "fontpkg-comfortaa": FacePackage("3.105", "display"),
    "fontpkg-gravitas-one": FacePackage("1.1", "display"),
    "fontpkg-lilita-one": FacePackage("1.2", "display"),
    "fontpkg-luckiest-guy": FacePackage("1.1", "display"),
    "fontpkg-orbitron": FacePackage("2.1", "display"),
    "fontpkg-press-start-2p": FacePackage("3.0", "display"),
    "fontpkg-righteous": FacePackage("1.0", "display"),
    "fontpkg-rowdies": FacePackage("1.0", "display"),
    "fontpkg-russo-one": FacePackage("1.0", "display"),
    "fontpkg-share-tech": FacePackage("1.100", "display"),
    "fontpkg-smooch-sans": FacePackage("1.10", "display"),
    "fontpkg-syne": FacePackage("2.200", "display"),
    "fontpkg-teko": FacePackage("2.0", "display"),
    "fontpkg-titan-one": FacePackage("1.1", "display"),
    "fontpkg-yanone-kaffeesatz": FacePackage("2.3", "display"),
}
