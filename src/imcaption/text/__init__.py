"""Tokenizers, saved with the model."""
