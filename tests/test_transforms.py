"""The batch transforms (forgetting/data/transforms.py, cutout.py): crop / flip / cutout
against plain single-image references, their draws, and the CIFAR train and test transforms
that compose them with normalisation.

The references below are deliberately naive (a zero canvas, slices, torch.flip, a pixel
loop with min/max for the cutout box) so that they can be checked by eye.
"""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from PIL import Image
from torchvision import transforms

from cutout import Cutout, apply_cutout, cutout_box, random_cutout
from forgetting.data.datasets import CIFAR_MEAN, CIFAR_STD
from forgetting.data.transforms import crop_flip, eval_transform, random_crop_flip, train_transform
from helpers import DEVICES


# ----------------------------------------------------------------------------- references

def ref_crop_flip(img, dy, dx, flip, padding=4):
    """One (C, H, W) image: paste into a zero canvas, slice the crop, maybe mirror it."""
    c, h, w = img.shape
    canvas = torch.zeros(c, h + 2 * padding, w + 2 * padding, dtype=img.dtype)
    canvas[:, padding:padding + h, padding:padding + w] = img
    crop = canvas[:, dy:dy + h, dx:dx + w]
    return torch.flip(crop, dims=[2]) if flip else crop.clone()


def ref_cutout(img, centres, length):
    """One (C, H, W) image: zero each hole's box, pixel by pixel."""
    out = img.clone()
    _, h, w = img.shape
    for y, x in centres:
        y0, y1 = min(max(y - length // 2, 0), h), min(max(y + length // 2, 0), h)
        x0, x1 = min(max(x - length // 2, 0), w), min(max(x + length // 2, 0), w)
        for r in range(y0, y1):
            for col in range(x0, x1):
                out[:, r, col] = 0
    return out


def chi_square(counts):
    counts = np.asarray(counts, dtype=float)
    expected = counts.sum() / counts.size
    return ((counts - expected) ** 2 / expected).sum()


# ----------------------------------------------------------------------------- crop / flip

def test_crop_flip_matches_reference_on_uint8_batch():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    offsets = torch.randint(0, 9, (16, 2))
    offsets[:4] = torch.tensor([[0, 0], [8, 8], [0, 8], [8, 0]])   # the four extremes
    flips = torch.arange(16) % 2 == 0
    out = crop_flip(images, offsets, flips)
    assert out.dtype == torch.uint8 and out.shape == images.shape
    for i in range(16):
        dy, dx = offsets[i].tolist()
        assert torch.equal(out[i], ref_crop_flip(images[i], dy, dx, bool(flips[i])))


def test_crop_flip_centre_offset_without_flip_is_identity():
    images = torch.rand(3, 3, 32, 32)
    out = crop_flip(images, torch.full((3, 2), 4), torch.zeros(3, dtype=torch.bool))
    assert torch.equal(out, images)


def test_crop_flip_pads_with_zero_pixels():
    images = torch.full((1, 3, 32, 32), 200, dtype=torch.uint8)
    out = crop_flip(images, torch.tensor([[0, 8]]), torch.tensor([False]))
    assert torch.all(out[0, :, :4, :] == 0) and torch.all(out[0, :, :, 28:] == 0)
    assert torch.all(out[0, :, 4:, :28] == 200)


@settings(max_examples=40, deadline=None)
@given(b=st.integers(1, 4), c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9),
       padding=st.integers(0, 4), seed=st.integers(0, 2**31 - 1))
def test_crop_flip_matches_reference_for_any_shape(b, c, h, w, padding, seed):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(b, c, h, w, generator=g)
    offsets = torch.randint(0, 2 * padding + 1, (b, 2), generator=g)
    flips = torch.rand(b, generator=g) < 0.5
    out = crop_flip(images, offsets, flips, padding)
    for i in range(b):
        dy, dx = offsets[i].tolist()
        assert torch.equal(out[i], ref_crop_flip(images[i], dy, dx, bool(flips[i]), padding))


@pytest.mark.parametrize("device", DEVICES)
def test_random_crop_flip_draws_offsets_then_flips_from_the_generator(device):
    images = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8, device=device)
    out = random_crop_flip(images, generator=torch.Generator(device=device).manual_seed(7))
    g = torch.Generator(device=device).manual_seed(7)
    offsets = torch.randint(0, 9, (32, 2), generator=g, device=device)
    flips = torch.rand(32, generator=g, device=device) < 0.5
    out, images, offsets, flips = out.cpu(), images.cpu(), offsets.cpu(), flips.cpu()
    for i in range(32):
        dy, dx = offsets[i].tolist()
        assert torch.equal(out[i], ref_crop_flip(images[i], dy, dx, bool(flips[i])))


def test_random_crop_flip_draws_are_uniform_and_independent():
    """Read each example's offset and flip back from a coordinate-encoding image."""
    n, size = 8100, 12
    coords = torch.arange(1, size + 1, dtype=torch.float32)
    image = torch.stack([coords[:, None].expand(size, size),     # channel 0: row + 1
                         coords[None, :].expand(size, size)])    # channel 1: col + 1
    out = random_crop_flip(image.expand(n, 2, size, size),
                           generator=torch.Generator().manual_seed(0))
    mid = size // 2
    # Output row r reads source row dy + r - 4; output col c reads dx + c - 4, or
    # dx + (size - 1 - c) - 4 when flipped.
    dy = out[:, 0, mid, mid].long() - 1 - mid + 4
    flipped = out[:, 1, mid, mid + 1] < out[:, 1, mid, mid]
    src_col = out[:, 1, mid, mid].long() - 1
    dx = torch.where(flipped, src_col - (size - 1 - mid) + 4, src_col - mid + 4)

    assert set(dy.tolist()) == set(range(9)) and set(dx.tolist()) == set(range(9))
    # chi-square critical values at p = 0.001: df 8 -> 26.1, df 80 -> 124.8, df 1 -> 10.8
    assert chi_square(torch.bincount(dy, minlength=9)) < 26.1
    assert chi_square(torch.bincount(dx, minlength=9)) < 26.1
    assert chi_square(torch.bincount(dy * 9 + dx, minlength=81)) < 124.8
    assert chi_square(torch.bincount(flipped.long(), minlength=2)) < 10.8
    # the flip is independent of the offset: about half flipped at every dx
    for k in range(9):
        assert 0.4 < flipped[dx == k].float().mean().item() < 0.6


# ----------------------------------------------------------------------------- cutout

def test_cutout_box_on_ints_and_tensors():
    assert cutout_box(0, 0, 16, 32, 32) == (0, 8, 0, 8)
    assert cutout_box(31, 16, 16, 32, 32) == (23, 32, 8, 24)
    assert cutout_box(5, 5, 3, 32, 32) == (4, 6, 4, 6)     # odd length: 2 * (3 // 2) wide
    y = torch.tensor([0, 16, 31])
    x = torch.tensor([31, 0, 16])
    y0, y1, x0, x1 = cutout_box(y, x, 16, 32, 32)
    assert y0.tolist() == [0, 8, 23] and y1.tolist() == [8, 24, 32]
    assert x0.tolist() == [23, 0, 8] and x1.tolist() == [32, 8, 24]


def test_cutout_at_the_border_is_clipped():
    images = torch.ones(2, 3, 32, 32)
    out = apply_cutout(images, torch.tensor([[[0, 0]], [[31, 31]]]), 16)
    expected = torch.ones(2, 3, 32, 32)
    expected[0, :, 0:8, 0:8] = 0
    expected[1, :, 23:32, 23:32] = 0
    assert torch.equal(out, expected)
    assert torch.equal(images, torch.ones(2, 3, 32, 32))    # input left alone


def test_cutout_with_two_holes_zeros_both_boxes():
    images = torch.rand(1, 3, 32, 32) + 1                   # no natural zeros
    out = apply_cutout(images, torch.tensor([[[5, 5], [25, 25]]]), 8)
    zero = out[0, 0] == 0
    expected = torch.zeros(32, 32, dtype=torch.bool)
    expected[1:9, 1:9] = True
    expected[21:29, 21:29] = True
    assert torch.equal(zero, expected)
    assert torch.all(out[0, :, zero] == 0)
    assert torch.equal(out[0, :, ~zero], images[0, :, ~zero])


def test_apply_cutout_matches_reference():
    g = torch.Generator().manual_seed(3)
    images = torch.randn(12, 3, 32, 32, generator=g)
    centres = torch.randint(0, 32, (12, 3, 2), generator=g)
    for length in (1, 7, 16, 40):
        out = apply_cutout(images, centres, length)
        for i in range(12):
            assert torch.equal(out[i], ref_cutout(images[i], centres[i].tolist(), length))


@pytest.mark.parametrize("device", DEVICES)
def test_random_cutout_draws_all_y_then_all_x_from_the_generator(device):
    images = torch.randn(16, 3, 32, 32, device=device)
    out = random_cutout(images, 2, 10, generator=torch.Generator(device=device).manual_seed(5))
    g = torch.Generator(device=device).manual_seed(5)
    ys = torch.randint(0, 32, (16, 2), generator=g, device=device)
    xs = torch.randint(0, 32, (16, 2), generator=g, device=device)
    centres = torch.stack((ys, xs), dim=2).cpu().tolist()
    out, images = out.cpu(), images.cpu()
    for i in range(16):
        assert torch.equal(out[i], ref_cutout(images[i], centres[i], 10))


def test_random_cutout_centres_are_uniform_over_the_grid():
    """With length 2 the hole covers rows y-1..y, so the last zero row is the centre y."""
    n = 6400
    out = random_cutout(torch.ones(n, 1, 32, 32), 1, 2,
                        generator=torch.Generator().manual_seed(1))
    zero = out[:, 0] == 0
    idx = torch.arange(32)
    ys = torch.where(zero.any(dim=2), idx, -1).max(dim=1).values
    xs = torch.where(zero.any(dim=1), idx, -1).max(dim=1).values
    assert set(ys.tolist()) == set(range(32)) and set(xs.tolist()) == set(range(32))
    assert chi_square(torch.bincount(ys, minlength=32)) < 61.1   # df 31, p = 0.001
    assert chi_square(torch.bincount(xs, minlength=32)) < 61.1


def test_cutout_transform_in_compose_on_a_pil_image():
    rng = np.random.RandomState(0)
    pil = Image.fromarray(rng.randint(1, 256, (32, 32, 3), dtype=np.uint8))
    transform = transforms.Compose([transforms.ToTensor(), Cutout(1, 16)])
    for seed in range(20):
        np.random.seed(seed)
        out = transform(pil)
        np.random.seed(seed)
        y, x = np.random.randint(32), np.random.randint(32)   # the draws Cutout makes
        assert out.shape == (3, 32, 32)
        assert torch.equal(out, ref_cutout(transforms.ToTensor()(pil), [(y, x)], 16))
        zero = (out == 0).all(dim=0)
        rows, cols = zero.any(dim=1).sum().item(), zero.any(dim=0).sum().item()
        assert rows == min(y + 8, 32) - max(y - 8, 0)
        assert cols == min(x + 8, 32) - max(x - 8, 0)
        assert zero.sum().item() == rows * cols
        if 8 <= y <= 24 and 8 <= x <= 24:
            assert rows == cols == 16


def test_cutout_transform_agrees_with_the_batched_form():
    img = torch.rand(3, 32, 32) + 1
    np.random.seed(4)
    out = Cutout(2, 12)(img)
    np.random.seed(4)
    centres = [[np.random.randint(32), np.random.randint(32)] for _ in range(2)]
    batched = apply_cutout(img[None], torch.tensor([centres]), 12)[0]
    assert torch.equal(out, batched)


# ----------------------------------------------------------------------------- CIFAR transforms

@pytest.mark.parametrize("device", DEVICES)
def test_eval_transform_only_normalises(device):
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8, device=device)
    mean = torch.tensor(CIFAR_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD, device=device).view(1, 3, 1, 1)
    expected = (images.float() / 255 - mean) / std
    out = eval_transform(CIFAR_MEAN, CIFAR_STD, torch.device(device))(images)
    torch.testing.assert_close(out, expected)
    untouched = train_transform(CIFAR_MEAN, CIFAR_STD, torch.device(device))(images)
    torch.testing.assert_close(untouched, expected)
    last = eval_transform(CIFAR_MEAN, CIFAR_STD, torch.device(device), channels_last=True)(images)
    assert last.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(last, expected)


@pytest.mark.parametrize("device", DEVICES)
def test_train_transform_is_crop_flip_then_normalise_then_cutout(device):
    device = torch.device(device)
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, device=device)
    ours = torch.Generator(device=device).manual_seed(7)
    prepare = train_transform(CIFAR_MEAN, CIFAR_STD, device, data_augmentation=True, cutout=True,
                              n_holes=2, length=8, generator=ours)
    theirs = torch.Generator(device=device).manual_seed(7)
    normalise = eval_transform(CIFAR_MEAN, CIFAR_STD, device)
    for _ in range(2):  # consecutive batches continue the same stream
        expected = random_cutout(normalise(random_crop_flip(images, 4, theirs)), 2, 8, theirs)
        torch.testing.assert_close(prepare(images), expected)


def test_crop_padding_is_black_before_normalising():
    images = torch.full((64, 3, 32, 32), 255, dtype=torch.uint8)
    prepare = train_transform(CIFAR_MEAN, CIFAR_STD, torch.device("cpu"), data_augmentation=True,
                              generator=torch.Generator().manual_seed(0))
    out = prepare(images)
    mean, std = torch.tensor(CIFAR_MEAN).view(3, 1, 1), torch.tensor(CIFAR_STD).view(3, 1, 1)
    white, black = ((1 - mean) / std).expand(3, 32, 32), (-mean / std).expand(3, 32, 32)
    is_white = torch.isclose(out, white.expand_as(out))
    is_black = torch.isclose(out, black.expand_as(out))
    assert bool((is_white | is_black).all())
    assert bool(is_black.any()) and bool(is_white.any())
