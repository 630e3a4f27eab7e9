import pytest


@pytest.fixture(scope="session")
def recognizer():
    "The production paragraph model (lab4 part 1: text_recognizer.inference.paragraph and its ONNX weights), loaded once."
    try:
        from text_recognizer.inference.paragraph import ParagraphTextRecognizer
    except ImportError as e:
        pytest.fail(f"the paragraph model is not there yet ({e}); the service serves ParagraphTextRecognizer")
    return ParagraphTextRecognizer()
