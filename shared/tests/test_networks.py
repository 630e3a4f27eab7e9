"""Tests of text_recognizer.networks.character: output shapes, the named feature layer, arguments that change the architecture."""
import numpy as np
import pytest

from text_recognizer.metadata import CHARSET
from text_recognizer.networks.character import lenet, mlp


@pytest.mark.parametrize("make", [mlp, lenet])
def test_default_networks_map_28x28_images_to_charset_logits(make):
    net = make()
    out = np.asarray(net(np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)))
    assert out.shape == (3, len(CHARSET)) == (3, 80) and out.dtype == np.float32 and np.isfinite(out).all()


def test_lenet_exposes_its_features_and_stays_small():
    net = lenet()
    assert net.get_layer("features").output.shape == (None, 256)
    assert 100_000 < net.count_params() < 1_000_000


def test_arguments_change_the_architecture():
    small, wide = lenet(widths=(8, 16), dense_size=32), lenet(widths=(48, 96, 192))
    assert small.count_params() < lenet().count_params() < wide.count_params()
    assert lenet((32, 64), num_classes=10, widths=(4, 8), dense_size=8)(np.zeros((2, 32, 64))).shape == (2, 10)
    sizes = [layer.units for layer in mlp(layer_sizes=(64, 32, 16)).layers if hasattr(layer, "units")]
    assert sizes == [64, 32, 16, 80]


def test_dropout_is_active_only_in_training():
    net, x = mlp(dropout=0.5), np.ones((4, 28, 28), np.float32)
    assert np.allclose(net(x, training=False), net(x, training=False))
    assert not np.allclose(net(x, training=True), net(x, training=False))
