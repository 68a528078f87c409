"""Finding photos on disk (walk) and decoding them for detection (load_image)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, JpegImagePlugin

from photocluster.core.errors import ImageError
from photocluster.detect import images as images
from photocluster.detect.images import EXPORT_MARKER, EXTENSIONS, detection_size, is_photo_name, load_image, walk

RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def rel(paths: list[Path], root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def assert_color(pixel: np.ndarray, expected: tuple[int, int, int], tol: int = 0) -> None:
    diff = np.abs(pixel.astype(int) - np.array(expected))
    assert diff.max() <= tol, f"pixel {pixel.tolist()} is not {expected} (tolerance {tol})"


# -- walk ----------------------------------------------------------------------


def test_walk_recurses_in_a_stable_sorted_order(tmp_path: Path) -> None:
    for name in ["b.jpg", "a/c.jpg", "a/b/z.png", "A.JPG", "c/d/e/f.heic", "a0.jpg"]:
        touch(tmp_path / name)
    found = list(walk([tmp_path]))
    # Entries are sorted by name at each level, folders entered where they sort.
    assert rel(found, tmp_path) == ["A.JPG", "a/b/z.png", "a/c.jpg", "a0.jpg", "b.jpg", "c/d/e/f.heic"]
    assert list(walk([tmp_path])) == found


def test_walk_several_roots_and_file_roots(tmp_path: Path) -> None:
    one = touch(tmp_path / "one" / "x.jpg")
    two = touch(tmp_path / "two" / "y.jpg")
    single = touch(tmp_path / "single.png")
    assert list(walk([tmp_path / "two", single, tmp_path / "one"])) == [two, single, one]


def test_walk_keeps_only_photo_extensions_case_insensitively(tmp_path: Path) -> None:
    keep = ["a.JPG", "b.Jpeg", "c.jpe", "d.PNG", "e.HEIC", "f.heif", "g.WebP", "h.tif", "i.TIFF", "j.bmp", "k.GIF"]
    drop = ["notes.txt", "raw.cr2", "movie.mp4", "x.jpg.bak", "jpg", "noext", "y.svg"]
    for name in keep + drop:
        touch(tmp_path / name)
    assert sorted(rel(list(walk([tmp_path])), tmp_path)) == sorted(keep)
    assert {os.path.splitext(n)[1].lower() for n in keep} == set(EXTENSIONS)


def test_is_photo_name() -> None:
    assert is_photo_name("IMG_0001.JPG")
    assert is_photo_name("x.y.heic")
    assert not is_photo_name(".jpg")  # a hidden file with no extension
    assert not is_photo_name("photo.jpg.part")


def test_walk_skips_hidden_folders_but_not_hidden_roots(tmp_path: Path) -> None:
    touch(tmp_path / ".thumbnails" / "t.jpg")
    touch(tmp_path / "sub" / ".cache" / "c.jpg")
    touch(tmp_path / "sub" / "keep.jpg")
    assert rel(list(walk([tmp_path])), tmp_path) == ["sub/keep.jpg"]
    # Asked for by name, a hidden folder is scanned.
    assert rel(list(walk([tmp_path / ".thumbnails"])), tmp_path) == [".thumbnails/t.jpg"]


def test_walk_skips_export_folders(tmp_path: Path) -> None:
    touch(tmp_path / "photos" / "a.jpg")
    touch(tmp_path / "export" / "person_0001" / "a.jpg")
    touch(tmp_path / "export" / EXPORT_MARKER, b"{}")
    assert rel(list(walk([tmp_path])), tmp_path) == ["photos/a.jpg"]
    assert list(walk([tmp_path / "export"])) == []


def test_walk_ends_on_symlink_loops(tmp_path: Path) -> None:
    touch(tmp_path / "a" / "p.jpg")
    os.symlink(tmp_path / "a", tmp_path / "a" / "loop")
    os.symlink(tmp_path, tmp_path / "a" / "up")
    assert rel(list(walk([tmp_path])), tmp_path) == ["a/p.jpg"]


def test_walk_follows_symlinked_folders_once(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    touch(outside / "o.jpg")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(outside, root / "linked")
    assert rel(list(walk([root])), tmp_path) == ["root/linked/o.jpg"]
    # Both the real folder and the link: the folder is entered once.
    assert rel(list(walk([outside, root])), tmp_path) == ["outside/o.jpg"]


def test_walk_yields_a_file_reached_through_a_symlink_once(tmp_path: Path) -> None:
    touch(tmp_path / "a.jpg")
    os.symlink(tmp_path / "a.jpg", tmp_path / "b.jpg")
    os.link(tmp_path / "a.jpg", tmp_path / "c.jpg")
    assert rel(list(walk([tmp_path])), tmp_path) == ["a.jpg"]


def test_walk_reports_broken_photo_symlinks(tmp_path: Path) -> None:
    touch(tmp_path / "ok.jpg")
    os.symlink(tmp_path / "gone.jpg", tmp_path / "broken.jpg")
    os.symlink(tmp_path / "gone.txt", tmp_path / "broken.txt")
    errors: list[tuple[Path, str]] = []
    assert rel(list(walk([tmp_path], lambda p, r: errors.append((p, r)))), tmp_path) == ["ok.jpg"]
    assert errors == [(tmp_path / "broken.jpg", "broken symlink")]


def test_walk_reports_a_missing_root(tmp_path: Path) -> None:
    errors: list[tuple[Path, str]] = []
    assert list(walk([tmp_path / "nope"], lambda p, r: errors.append((p, r)))) == []
    assert errors == [(tmp_path / "nope", "file disappeared")]


def test_walk_reports_unreadable_folder_and_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulated with a failing scandir, so it also runs as root."""
    touch(tmp_path / "a" / "1.jpg")
    touch(tmp_path / "locked" / "2.jpg")
    touch(tmp_path / "z" / "3.jpg")
    real_scandir = os.scandir
    locked = tmp_path / "locked"

    def scandir(path: os.PathLike[str] | str) -> Iterator[os.DirEntry[str]]:
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(images.os, "scandir", scandir)
    errors: list[tuple[Path, str]] = []
    found = list(walk([tmp_path], lambda p, r: errors.append((p, r))))
    assert rel(found, tmp_path) == ["a/1.jpg", "z/3.jpg"]
    assert errors == [(locked, "cannot read folder: permission denied")]


def test_walk_without_on_error_stays_silent(tmp_path: Path) -> None:
    os.symlink(tmp_path / "gone.jpg", tmp_path / "broken.jpg")
    assert list(walk([tmp_path, tmp_path / "missing"])) == []


# -- detection_size ------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "max_size", "enlarge", "expected"),
    [
        ((4000, 3000), 1600, True, (1600, 1200)),
        ((4000, 3000), 1600, False, (1600, 1200)),
        ((3000, 4000), 1600, True, (1200, 1600)),
        ((3000, 2000), 1600, True, (1600, 1067)),
        ((1600, 1200), 1600, True, (1600, 1200)),
        ((640, 480), 1600, True, (1280, 960)),  # enlarged 2x at most
        ((640, 480), 1000, True, (1000, 750)),  # enlarged, but not beyond max_size
        ((640, 480), 1600, False, (640, 480)),  # never enlarged
        ((100, 1), 64, True, (64, 1)),  # never below one pixel
        ((1, 1), 1600, True, (2, 2)),
    ],
)
def test_detection_size(size: tuple[int, int], max_size: int, enlarge: bool, expected: tuple[int, int]) -> None:
    assert detection_size(*size, max_size, enlarge) == expected


# -- load_image: orientation ---------------------------------------------------

# Where the stored top-left corner is seen, for each EXIF orientation.
CORNER_AFTER_ORIENTATION = {
    1: "top-left",
    2: "top-right",
    3: "bottom-right",
    4: "bottom-left",
    5: "top-left",
    6: "top-right",
    7: "bottom-right",
    8: "bottom-left",
}


def _oriented_jpeg(path: Path, orientation: int) -> Path:
    # 64x32 stored, blue, with a red 16x16 block in the stored top-left corner (MCU aligned).
    im = Image.new("RGB", (64, 32), BLUE)
    im.paste(RED, (0, 0, 16, 16))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    im.save(path, exif=exif, quality=95, subsampling=0)
    return path


def _corner(pixels: np.ndarray, where: str) -> np.ndarray:
    h, w = pixels.shape[:2]
    y = 8 if where.startswith("top") else h - 8
    x = 8 if where.endswith("left") else w - 8
    return pixels[y, x]


@pytest.mark.parametrize("orientation", sorted(CORNER_AFTER_ORIENTATION))
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int) -> None:
    img = load_image(_oriented_jpeg(tmp_path / "o.jpg", orientation), max_size=1600, enlarge=False)
    transposed = orientation >= 5
    assert (img.width, img.height) == ((32, 64) if transposed else (64, 32))
    assert img.pixels.shape == (img.height, img.width, 3)
    assert img.scale == 1.0
    where = CORNER_AFTER_ORIENTATION[orientation]
    assert_color(_corner(img.pixels, where), RED, tol=12)
    for other in {"top-left", "top-right", "bottom-left", "bottom-right"} - {where}:
        assert_color(_corner(img.pixels, other), BLUE, tol=12)


def test_orientation_6_swaps_size_and_puts_the_corner_top_right(tmp_path: Path) -> None:
    img = load_image(_oriented_jpeg(tmp_path / "o6.jpg", 6), max_size=1600, enlarge=False)
    assert (img.width, img.height) == (32, 64)
    # The red block is now columns 16..31 of rows 0..15.
    assert_color(img.pixels[8, 24], RED, tol=12)
    assert_color(img.pixels[8, 8], BLUE, tol=12)
    assert_color(img.pixels[56, 24], BLUE, tol=12)


def test_orientation_6_scale_is_relative_to_the_displayed_size(tmp_path: Path) -> None:
    img = load_image(_oriented_jpeg(tmp_path / "o6.jpg", 6), max_size=32, enlarge=True)
    assert (img.width, img.height) == (32, 64)
    assert img.pixels.shape == (32, 16, 3)
    assert img.scale == 0.5


@pytest.mark.parametrize("orientation", [0, 9, 255])
def test_invalid_orientations_are_ignored(tmp_path: Path, orientation: int) -> None:
    img = load_image(_oriented_jpeg(tmp_path / "o.jpg", orientation), max_size=1600, enlarge=False)
    assert (img.width, img.height) == (64, 32)
    assert_color(_corner(img.pixels, "top-left"), RED, tol=12)
    assert_color(_corner(img.pixels, "top-right"), BLUE, tol=12)


# -- load_image: modes and formats ---------------------------------------------


def test_rgba_png_is_flattened_on_white(tmp_path: Path) -> None:
    im = Image.new("RGBA", (30, 10), (255, 0, 0, 255))
    im.paste((0, 0, 255, 0), (10, 0, 20, 10))  # fully transparent blue
    im.paste((0, 0, 0, 128), (20, 0, 30, 10))  # half transparent black
    im.save(tmp_path / "a.png")
    px = load_image(tmp_path / "a.png", 1600, enlarge=False).pixels
    assert px.shape == (10, 30, 3)
    assert_color(px[5, 5], RED)
    assert_color(px[5, 15], WHITE)
    assert_color(px[5, 25], (127, 127, 127), tol=1)


def test_la_png_is_flattened_on_white(tmp_path: Path) -> None:
    im = Image.new("LA", (20, 10), (50, 255))
    im.paste((0, 0), (10, 0, 20, 10))
    im.save(tmp_path / "la.png")
    px = load_image(tmp_path / "la.png", 1600, enlarge=False).pixels
    assert_color(px[5, 5], (50, 50, 50))
    assert_color(px[5, 15], WHITE)


def test_16_bit_grayscale_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    arr = np.zeros((10, 40), dtype=np.uint16)
    arr[:, 10:20] = 40000
    arr[:, 20:30] = 65535
    arr[:, 30:40] = 257 * 100
    Image.fromarray(arr).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as check:
        assert check.mode == "I;16"
    px = load_image(tmp_path / "g16.png", 1600, enlarge=False).pixels
    assert_color(px[5, 5], (0, 0, 0))
    assert_color(px[5, 15], (155, 155, 155))  # 40000 / 257 = 155.6
    assert_color(px[5, 25], WHITE)
    assert_color(px[5, 35], (100, 100, 100))


def test_32_bit_integer_image_is_scaled_to_its_maximum(tmp_path: Path) -> None:
    arr = np.zeros((10, 20), dtype=np.int32)
    arr[:, 10:] = 1000
    arr[:, 15:] = 500
    Image.fromarray(arr, "I").save(tmp_path / "i32.tif")
    px = load_image(tmp_path / "i32.tif", 1600, enlarge=False).pixels
    assert_color(px[5, 5], (0, 0, 0))
    assert_color(px[5, 12], WHITE)
    assert_color(px[5, 17], (127, 127, 127))


def test_palette_png_with_transparency(tmp_path: Path) -> None:
    im = Image.new("P", (20, 10), 1)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    im.paste(0, (10, 0, 20, 10))
    im.save(tmp_path / "p.png", transparency=0)
    px = load_image(tmp_path / "p.png", 1600, enlarge=False).pixels
    assert_color(px[5, 5], RED)
    assert_color(px[5, 15], WHITE)  # transparent black shows as white, not black


def test_palette_png_without_transparency(tmp_path: Path) -> None:
    im = Image.new("P", (20, 10), 1)
    im.putpalette([0, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 6))
    im.paste(0, (10, 0, 20, 10))
    im.save(tmp_path / "p.png")
    px = load_image(tmp_path / "p.png", 1600, enlarge=False).pixels
    assert_color(px[5, 5], (0, 255, 0))
    assert_color(px[5, 15], (0, 0, 0))


def test_cmyk_jpeg(tmp_path: Path) -> None:
    Image.new("CMYK", (32, 16), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=95)
    img = load_image(tmp_path / "cmyk.jpg", 1600, enlarge=False)
    assert img.pixels.shape == (16, 32, 3)
    assert img.pixels.dtype == np.uint8
    assert_color(img.pixels[8, 16], RED, tol=3)


def test_grayscale_jpeg(tmp_path: Path) -> None:
    Image.new("L", (32, 16), 90).save(tmp_path / "gray.jpg")
    px = load_image(tmp_path / "gray.jpg", 1600, enlarge=False).pixels
    assert px.shape == (16, 32, 3)
    assert_color(px[8, 16], (90, 90, 90), tol=1)


def test_animated_gif_uses_the_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (20, 10), c) for c in (RED, (0, 255, 0), BLUE)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(tmp_path / "anim.gif") as check:
        assert check.n_frames == 3
    img = load_image(tmp_path / "anim.gif", 1600, enlarge=False)
    assert (img.width, img.height) == (20, 10)
    assert_color(img.pixels[5, 5], RED)


@pytest.mark.parametrize(
    ("name", "save"),
    [
        ("a.webp", {"lossless": True}),
        ("a.tif", {}),
        ("a.tiff", {"compression": "tiff_lzw"}),
        ("a.bmp", {}),
        ("a.png", {}),
    ],
)
def test_lossless_formats_decode_exactly(tmp_path: Path, name: str, save: dict[str, object]) -> None:
    im = Image.new("RGB", (30, 20), (12, 200, 34))
    im.paste((250, 120, 5), (0, 0, 10, 10))
    im.save(tmp_path / name, **save)  # type: ignore[arg-type]
    img = load_image(tmp_path / name, 1600, enlarge=False)
    assert (img.width, img.height, img.scale) == (30, 20, 1.0)
    assert img.pixels.shape == (20, 30, 3)
    assert_color(img.pixels[5, 5], (250, 120, 5))
    assert_color(img.pixels[15, 25], (12, 200, 34))


def test_lossy_webp(tmp_path: Path) -> None:
    Image.new("RGB", (32, 16), (200, 30, 30)).save(tmp_path / "a.webp", quality=90)
    img = load_image(tmp_path / "a.webp", 1600, enlarge=False)
    assert (img.width, img.height) == (32, 16)
    assert_color(img.pixels[8, 16], (200, 30, 30), tol=8)


def test_heic_through_pillow_heif(tmp_path: Path) -> None:
    from pillow_heif import register_heif_opener

    register_heif_opener()
    Image.new("RGB", (64, 48), (0, 200, 0)).save(tmp_path / "a.heic", format="HEIF", quality=90)
    img = load_image(tmp_path / "a.heic", 1600, enlarge=False)
    assert (img.width, img.height, img.scale) == (64, 48, 1.0)
    assert img.pixels.shape == (48, 64, 3)
    assert_color(img.pixels[24, 32], (0, 200, 0), tol=6)


def test_heic_orientation_is_applied_once(tmp_path: Path) -> None:
    """pillow_heif rotates on decode and resets the EXIF orientation: no double rotation."""
    from pillow_heif import register_heif_opener

    register_heif_opener()
    im = Image.new("RGB", (64, 32), BLUE)
    im.paste(RED, (0, 0, 16, 16))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    im.save(tmp_path / "o6.heic", format="HEIF", exif=exif.tobytes(), quality=95)
    img = load_image(tmp_path / "o6.heic", 1600, enlarge=False)
    assert (img.width, img.height) == (32, 64)
    assert_color(_corner(img.pixels, "top-right"), RED, tol=12)
    for other in ("top-left", "bottom-left", "bottom-right"):
        assert_color(_corner(img.pixels, other), BLUE, tol=12)


# -- load_image: bad files -----------------------------------------------------


def _truncated_jpeg(path: Path) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(path.with_suffix(".full.jpg"))
    data = path.with_suffix(".full.jpg").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _bad_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "photos" / f"{kind}.jpg"
    path.parent.mkdir(exist_ok=True)
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a photo\nsecond line\n")
    elif kind == "truncated":
        _truncated_jpeg(path)
    elif kind == "header-only":
        path.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    elif kind == "folder":
        path.mkdir()
    return path


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("empty", "not a readable image (unknown or corrupt format)"),
        ("text", "not a readable image (unknown or corrupt format)"),
        ("truncated", "corrupt or truncated image (image file is truncated"),
        ("header-only", "corrupt or truncated image (Truncated File Read)"),
        ("folder", "is a folder, not a file"),
        ("missing", "file disappeared"),
    ],
)
def test_bad_files_raise_a_one_line_image_error(tmp_path: Path, kind: str, reason: str) -> None:
    path = _bad_file(tmp_path, kind)
    with pytest.raises(ImageError) as info:
        load_image(path, 1600)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert info.value.path == path
    assert message[len(f"{path}: ") :].startswith(reason)
    assert info.value.exit_code == 1


def test_image_error_names_a_file_with_undecodable_bytes(tmp_path: Path) -> None:
    path = Path(os.fsdecode(os.fsencode(tmp_path) + b"/bad\xff.jpg"))
    path.write_bytes(b"")
    with pytest.raises(ImageError) as info:
        load_image(path, 1600)
    assert str(info.value) == f"{path}: not a readable image (unknown or corrupt format)"


# -- load_image: size and scale --------------------------------------------------


def test_large_image_is_downscaled_to_max_size(tmp_path: Path) -> None:
    Image.new("RGB", (400, 200), RED).save(tmp_path / "big.png")
    img = load_image(tmp_path / "big.png", max_size=100)
    assert (img.width, img.height) == (400, 200)
    assert img.pixels.shape == (50, 100, 3)
    assert img.scale == 0.25
    assert_color(img.pixels[25, 50], RED)


def test_small_image_is_enlarged_at_most_twice(tmp_path: Path) -> None:
    Image.new("RGB", (64, 48), BLUE).save(tmp_path / "small.png")
    img = load_image(tmp_path / "small.png", max_size=1600)
    assert (img.width, img.height) == (64, 48)
    assert img.pixels.shape == (96, 128, 3)
    assert img.scale == 2.0


def test_small_image_is_enlarged_only_up_to_max_size(tmp_path: Path) -> None:
    Image.new("RGB", (64, 48), BLUE).save(tmp_path / "small.png")
    img = load_image(tmp_path / "small.png", max_size=100)
    assert img.pixels.shape == (75, 100, 3)
    assert img.scale == 100 / 64


def test_enlarge_false_never_enlarges(tmp_path: Path) -> None:
    Image.new("RGB", (64, 48), BLUE).save(tmp_path / "small.png")
    img = load_image(tmp_path / "small.png", max_size=1600, enlarge=False)
    assert img.pixels.shape == (48, 64, 3)
    assert img.scale == 1.0
    # ... but still shrinks.
    img = load_image(tmp_path / "small.png", max_size=32, enlarge=False)
    assert img.pixels.shape == (24, 32, 3)
    assert img.scale == 0.5


def test_scale_maps_detection_pixels_back_to_photo_pixels(tmp_path: Path) -> None:
    im = Image.new("RGB", (300, 200), BLUE)
    im.paste(RED, (150, 100, 300, 200))
    im.save(tmp_path / "q.png")
    img = load_image(tmp_path / "q.png", max_size=120)
    assert img.pixels.shape == (80, 120, 3)
    # The photo's point (225, 150) is at (225, 150) * scale in detection pixels.
    x, y = round(225 * img.scale), round(150 * img.scale)
    assert (x, y) == (90, 60)
    assert_color(img.pixels[y, x], RED)
    assert_color(img.pixels[20, 20], BLUE)


def test_draft_decode_of_a_big_jpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.jpg"
    im = Image.new("RGB", (3200, 2400), BLUE)
    im.paste(RED, (0, 0, 1600, 1200))
    im.save(path, quality=85)
    decoded_sizes: list[tuple[int, int]] = []
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def draft(self: JpegImagePlugin.JpegImageFile, mode: str | None, size: tuple[int, int] | None) -> object:
        result = real_draft(self, mode, size)
        decoded_sizes.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", draft)

    img = load_image(path, max_size=400)
    # DCT scaling by 1/8 gives the target size directly.
    assert decoded_sizes == [(400, 300)]
    assert (img.width, img.height) == (3200, 2400)
    assert img.pixels.shape == (300, 400, 3)
    assert img.scale == 0.125
    assert_color(img.pixels[75, 100], RED, tol=12)
    assert_color(img.pixels[225, 300], BLUE, tol=12)

    decoded_sizes.clear()
    img = load_image(path, max_size=1000)
    # 1/4 would be 800 px, below the target: decode at 1/2 and resize.
    assert decoded_sizes == [(1600, 1200)]
    assert img.pixels.shape == (750, 1000, 3)
    assert img.scale == 1000 / 3200
    assert_color(img.pixels[180, 250], RED, tol=12)


# -- load_image: EXIF date -------------------------------------------------------


def _jpeg_with_exif(path: Path, exif: Image.Exif) -> Path:
    Image.new("RGB", (16, 16), BLUE).save(path, exif=exif)
    return path


def test_datetime_original_becomes_iso_taken_at(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2021:07:04 15:30:09"
    exif[ExifTags.Base.DateTime] = "2020:01:01 00:00:00"  # DateTime: only a fallback
    assert load_image(_jpeg_with_exif(tmp_path / "a.jpg", exif), 100).taken_at == "2021-07-04T15:30:09"


def test_datetime_is_the_fallback(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.DateTime] = "2019:12:31 23:59:58"
    assert load_image(_jpeg_with_exif(tmp_path / "a.jpg", exif), 100).taken_at == "2019-12-31T23:59:58"


@pytest.mark.parametrize("value", ["0000:00:00 00:00:00", "    :  :     :  :  ", "yesterday", "2021-07-04"])
def test_junk_dates_give_no_taken_at(tmp_path: Path, value: str) -> None:
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = value
    assert load_image(_jpeg_with_exif(tmp_path / "a.jpg", exif), 100).taken_at is None


def test_no_exif_gives_no_taken_at(tmp_path: Path) -> None:
    Image.new("RGB", (16, 16), BLUE).save(tmp_path / "a.png")
    assert load_image(tmp_path / "a.png", 100).taken_at is None


# -- fuzzing the decoding boundary ---------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _seed_files() -> list[bytes]:
    import io

    from PIL import Image as PILImage

    out = []
    for fmt, mode in (("JPEG", "RGB"), ("PNG", "RGBA"), ("GIF", "P"), ("WEBP", "RGB"), ("TIFF", "RGB"), ("BMP", "RGB")):
        buf = io.BytesIO()
        im = PILImage.new(mode, (24, 16), 120 if mode == "P" else (200, 10, 10, 255)[: len(mode)])
        exif = PILImage.Exif()
        exif[ExifTags.Base.Orientation] = 6
        im.save(buf, format=fmt, **({"exif": exif.tobytes()} if fmt == "JPEG" else {}))
        out.append(buf.getvalue())
    return out


SEEDS = _seed_files()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(st.tuples(st.integers(min_value=0, max_value=4096), st.integers(0, 255)), max_size=8),
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=4096)),
)
def test_fuzzed_files_decode_or_raise_image_error(
    tmp_path: Path, seed: bytes, edits: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(seed)
    for pos, value in edits:
        if data:
            data[pos % len(data)] = value
    if cut is not None:
        data = data[:cut]
    path = tmp_path / "fuzz.jpg"
    path.write_bytes(bytes(data))
    try:
        image = load_image(path, 64)
    except ImageError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path))
    else:
        assert image.pixels.dtype == np.uint8 and image.pixels.ndim == 3 and image.pixels.shape[2] == 3
        assert max(image.pixels.shape[:2]) <= 64


# -- fingerprints: what a re-scan knows a file by ------------------------------------


def exiftool(*args: str | Path) -> None:
    import shutil
    import subprocess

    tool = shutil.which("exiftool")
    if tool is None:
        pytest.fail("exiftool not found: apt-get install -y libimage-exiftool-perl (.ci/run does this)")
    subprocess.run([tool, "-q", "-overwrite_original", *map(str, args)], check=True)


def test_a_metadata_edit_keeps_the_pixel_key_and_changes_the_hash(tmp_path: Path) -> None:
    photo = tmp_path / "a.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(photo, quality=90)
    before = images.fingerprint(photo)
    assert before.pixel_key is not None and before.sha256 == images.file_hash(photo)
    exiftool("-Keywords=family", "-Rating=5", "-DateTimeOriginal=2020:01:02 03:04:05", "-Comment=hi", photo)
    after = images.fingerprint(photo)
    assert after.sha256 != before.sha256
    assert after.pixel_key == before.pixel_key
    assert images.taken_at_of(photo) == "2020-01-02T03:04:05"
    # A turn is a change of the pixels as displayed, though only a tag changed.
    exiftool("-Orientation#=6", photo)
    assert images.fingerprint(photo).pixel_key != before.pixel_key
    # So is any change of the pixels themselves.
    exiftool("-Orientation#=1", photo)
    assert images.fingerprint(photo).pixel_key == before.pixel_key
    Image.open(photo).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(photo, quality=90)
    assert images.fingerprint(photo).pixel_key != before.pixel_key


def test_files_without_a_pixel_key_have_a_hash(tmp_path: Path) -> None:
    png = tmp_path / "a.png"
    Image.new("RGB", (8, 8), RED).save(png)
    assert images.fingerprint(png).pixel_key is None
    empty = touch(tmp_path / "empty.jpg", b"")
    assert images.fingerprint(empty) == images.Fingerprint(images.file_hash(empty), None)
    truncated = tmp_path / "t.jpg"
    Image.new("RGB", (64, 64), BLUE).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    assert images.fingerprint(truncated).pixel_key is None
    with pytest.raises(ImageError, match=r"nope\.jpg"):
        images.fingerprint(tmp_path / "nope.jpg")


def test_walk_reports_photo_names_on_fifos_devices_and_sockets_and_never_opens_them(tmp_path: Path) -> None:
    import socket

    from conftest import without_hanging

    good = touch(tmp_path / "a.jpg")
    os.mkfifo(tmp_path / "fifo.jpg")
    os.mkfifo(tmp_path / "pipe")  # not a photo's name: not a photo, not reported
    (tmp_path / "zero.jpg").symlink_to("/dev/zero")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock.png"))
    sock.close()
    errors: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    found = list(
        walk(
            [tmp_path, tmp_path / "fifo.jpg"],
            on_error=lambda p, r: errors.append((p.name, r)),
            on_skip=lambda p, r: skipped.append((p.name, r)),
        )
    )
    assert found == [good] and errors == []
    assert skipped == [
        ("fifo.jpg", "not a regular file (a FIFO): not read"),
        ("sock.png", "not a regular file (a socket): not read"),
        ("zero.jpg", "not a regular file (a character device): not read"),
        ("fifo.jpg", "not a regular file (a FIFO): not read"),  # given as a root
    ]
    # Without on_skip, they go to on_error.
    assert len([r for _, r in without_hanging(lambda: _walk_errors(tmp_path))]) == 3


def _walk_errors(root: Path) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    list(walk([root], on_error=lambda p, r: errors.append((p.name, r))))
    return errors


@pytest.mark.parametrize("make", ["fifo", "zero"])
def test_a_photo_replaced_by_a_fifo_or_a_device_after_the_walk_is_refused_without_blocking(
    tmp_path: Path, make: str
) -> None:
    from conftest import without_hanging

    path = tmp_path / "p.jpg"
    if make == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    reason = "not a regular file (a FIFO)" if make == "fifo" else "not a regular file (a character device)"
    for step in (lambda: load_image(path, 100), lambda: images.fingerprint(path), lambda: images.file_hash(path)):
        with pytest.raises(ImageError) as caught:
            without_hanging(step, fifos=[path])
        assert caught.value.reason == reason
    assert without_hanging(lambda: images.taken_at_of(path), fifos=[path]) is None
