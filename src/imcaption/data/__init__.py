"""Datasets: captcha generator, label files and splits, image cache."""
