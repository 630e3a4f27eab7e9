"""Text Recognizer Labs: handwritten text recognition, exported from the notebooks in `solutions/`."""
__version__ = "0.1.0"

_lazy = {"CharacterPredictor": "inference.character", "LinePredictor": "inference.line",
         "ParagraphTextRecognizer": "inference.paragraph"}


def __getattr__(name):
    "Import the predictors on first use, so `import text_recognizer` stays light."
    if name in _lazy:
        import importlib
        return getattr(importlib.import_module(f".{_lazy[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
