"Tests of text_recognizer.networks.line: sliding windows, the baseline and the CNN-LSTM line networks."
import numpy as np
import pytest

keras = pytest.importorskip("keras")
from text_recognizer.networks.line import SlidingWindows, line_cnn_sliding_window, line_lstm_ctc, sliding_windows
from text_recognizer.metadata import CHARSET


def test_sliding_windows_cut_the_right_columns():
    images = np.arange(2 * 3 * 20).reshape(2, 3, 20)
    windows = np.asarray(sliding_windows(images, width=6, stride=4))
    assert windows.shape == (2, (20 - 6) // 4 + 1, 3, 6)
    for t in range(windows.shape[1]):
        assert np.array_equal(windows[:, t], images[:, :, 4 * t:4 * t + 6])


def test_sliding_windows_layer_round_trips_its_config():
    layer = SlidingWindows(12, 3)
    assert SlidingWindows.from_config(layer.get_config()).stride == 3
    assert layer.compute_output_shape((None, 28, 30)) == (None, 7, 28, 12)
    assert layer.compute_output_shape((None, 28, None)) == (None, None, 28, 12)


def test_baseline_steps_follow_the_width():
    net = line_cnn_sliding_window(window_width=28, window_stride=14)
    for width in (28, 100, 300):
        assert net(np.zeros((2, 28, width), "float32")).shape == (2, (width - 28) // 14 + 1, len(CHARSET))


@pytest.mark.parametrize("stride", [2, 4, 8])
def test_lstm_network_takes_any_width(stride):
    net = line_lstm_ctc(window_width=4 * stride, window_stride=stride, lstm_units=16, features=32, widths=(8, 8, 8))
    assert net.input_shape == (None, 28, None)
    for width in (32, 97, 256):
        assert net(np.zeros((1, 28, width), "float32")).shape == (1, width // stride, len(CHARSET))


def test_lstm_network_sees_the_whole_line():
    "With the LSTM, changing pixels at the right end changes the outputs at the left end."
    keras.utils.set_random_seed(0)
    net = line_lstm_ctc(widths=(8, 8, 8), features=16, lstm_units=8)
    x = np.zeros((1, 28, 128), "float32")
    y = x.copy()
    y[:, :, 100:120] = 1
    first = lambda a: np.asarray(net(a, training=False))[0, 0]
    assert not np.allclose(first(x), first(y))


@pytest.mark.parametrize("bad", [dict(window_stride=3), dict(window_stride=16), dict(window_width=30)])
def test_bad_window_arguments_are_refused(bad):
    with pytest.raises(ValueError, match="window"):
        line_lstm_ctc(**bad)


def test_lstm_network_saves_and_loads(tmp_path):
    net = line_lstm_ctc(widths=(8, 8, 8), features=16, lstm_units=8)
    x = np.random.default_rng(0).random((1, 28, 64), dtype=np.float32)
    net.save(tmp_path / "net.keras")
    again = keras.models.load_model(tmp_path / "net.keras", compile=False)
    assert np.allclose(again(x), net(x), atol=1e-5)
