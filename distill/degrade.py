"""Named degradation presets: what a camera, a lens and a call do to a frame.

``PRESETS`` maps a name to a factory of a fresh ``Degradation`` built from the blocks in
``distill.degrade_ops``; ``get_preset(name)`` returns one and ``degrade(image, preset,
seed=...)`` applies it with a fresh generator built from the seed, so one image, preset and
seed always give the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from distill.degrade_ops import (
    JPEG,
    CameraDenoise,
    Compose,
    Degradation,
    Denoise,
    DiskBlur,
    GaussianBlur,
    Identity,
    IspSharpen,
    Maybe,
    MotionBlur,
    Noise,
    RandomChoice,
    Resize,
    VideoCodec,
    as_float_bgr,
    finish,
)
from engines.errors import KdcamError


# --------------------------------------------------------------------------- presets


def _soft_camera() -> Degradation:
    """An ordinary webcam in ordinary light. Each stage is one thing a webcam does to a frame,
    in the order it happens, with the range that webcams show:

    * optics: a soft lens or a slightly missed focus (Gaussian sigma 0.5-1.8: a 720p webcam
      lens is rarely sharper than sigma 0.5 and past 1.8 the frame is visibly out of focus),
      a clearly missed focus (a lens's defocus is a disk, radius 0.8-3 px: autofocus that
      settled on the background; a fifth of the frames, since a disk's ringing spectrum is
      what a Gaussian-trained model recovers worst), or a head moving during the 1/30 s
      exposure (1.5-5 px). 35% of the crops are a sharp camera: untouched optics or sigma
      below 0.4, so the model learns to leave those alone;
    * a lower sensor mode scaled up by the camera (binned 640x360 shown as 720p, digital
      zoom): area or bicubic down by 1.2-2, bicubic or bilinear up, on 35% of the crops;
    * sensor noise after the ISP, mostly luma, up to about 3 levels (8-bit) in the shadows
      and highlights of an indoor scene, on 60%;
    * the ISP's noise reduction (an edge-preserving smoothing that also flattens texture),
      on 25%;
    * the camera's MJPEG (quality 70-95, what UVC webcams send at 720p and above), on 85%.
    """
    optics = RandomChoice(
        [GaussianBlur(sigma=(0.5, 1.8)), DiskBlur(radius=(0.8, 3.0)), MotionBlur(length=(1.5, 5.0)),
         GaussianBlur(sigma=(0.0, 0.4)), Identity()],
        weights=[0.37, 0.20, 0.08, 0.15, 0.20],
    )
    return Compose([
        optics,
        Maybe(Resize(factor=(1.2, 2.0), down=("area", "bicubic"), up=("bicubic", "bilinear")), p=0.35),
        Maybe(Noise(read=(0.0, 0.010), shot=(0.0, 0.00006), luma_fraction=(0.7, 0.95)), p=0.6),
        Maybe(Denoise(strength=(0.02, 0.08), radius=(0.8, 2.0)), p=0.25),
        Maybe(JPEG(quality=(70, 95)), p=0.85),
    ])


def _dim() -> Degradation:
    """A dim room (an evening call, a lamp behind the screen): the camera opens its exposure
    and raises its gain, then hides the noise.

    * a long exposure (1/15-1/30 s): a small motion blur of 1-4 px on 60% of the frames, from
      a head that moves a little while the shutter is open (more than 4 px is visible
      smearing, which auto-exposure avoids by raising gain instead);
    * sensor noise at high gain: sigma 3-8 levels (8-bit), 80-95% of it in luma (webcam ISPs
      suppress chroma noise hardest), a little signal-dependent shot noise;
    * the camera's own denoiser, of a random kind and strength (``CameraDenoise``: bilateral,
      non-local means, or a light blur; tuned for 2.5-9 levels, so it may leave noise or
      flatten texture), on 90% (a few cameras send the noise through);
    * MJPEG at quality 70-92 (a dim frame's noise costs bits, so the camera's encoder works
      harder than in daylight).
    """
    return Compose([
        Maybe(MotionBlur(length=(1.0, 4.0), angle=(0.0, 180.0)), p=0.6),
        Noise(read=(3 / 255, 8 / 255), shot=(0.0, 0.00004), luma_fraction=(0.8, 0.95)),
        Maybe(CameraDenoise(), p=0.9),
        JPEG(quality=(70, 92)),
    ])


def _missed_focus() -> Degradation:
    """A missed focus in good light: autofocus settled on the background, or a fixed-focus lens
    too close to the face, with a bright scene, so little noise and a high MJPEG quality.

    * the defocus (Gaussian sigma 0.8-2.0 on 60%, a disk of radius 1-3 px on 40%: the same
      ranges as the ``defocus`` row, from a visibly soft face to one clearly out of focus);
    * light sensor noise (0-1.5 levels, 8-bit: a bright scene at low gain) on 40%;
    * MJPEG at quality 85-98 on 70% (a bright, soft frame is cheap to encode).

    Almost clean, strong blur is where a blind model must act most boldly, and the soft-camera
    kind holds too little of it (about 3% of the mix blurred with neither noise nor JPEG); a
    teacher without it stayed 0.13 dB ahead of an unsharp mask on ``defocus``.
    """
    return Compose([
        RandomChoice([GaussianBlur(sigma=(0.8, 2.0)), DiskBlur(radius=(1.0, 3.0))], weights=[0.6, 0.4]),
        Maybe(Noise(read=(0.0, 1.5 / 255), shot=(0.0, 0.00002), luma_fraction=(0.8, 0.95)), p=0.4),
        Maybe(JPEG(quality=(85, 98)), p=0.7),
    ])


def _isp_sharpened() -> Degradation:
    """A camera that already sharpens: its ISP boosts a soft lens's edges before MJPEG.

    * the soft optics it compensates (Gaussian sigma 0.4-1.2), with light sensor noise
      (0-2 levels) on 60%, which the boost then amplifies as a real ISP does;
    * the boost (``IspSharpen``, an unsharp mask on luma): crisp on 60% of the frames (sigma
      0.6-1.2, amount 0.3-1.0, the look of a good webcam) and halo-prone on 40% (sigma 1.5-3,
      amount 0.8-2.0: bright and dark rims along edges, the look of a cheap one);
    * MJPEG at quality 70-95.

    The reference is the untouched photo, so the right answer is to leave the frame or to
    soften its halos, never to add more.
    """
    return Compose([
        GaussianBlur(sigma=(0.4, 1.2)),
        Maybe(Noise(read=(0.0, 2 / 255), shot=(0.0, 0.00003), luma_fraction=(0.8, 0.95)), p=0.6),
        RandomChoice([IspSharpen(sigma=(0.6, 1.2), amount=(0.3, 1.0)), IspSharpen(sigma=(1.5, 3.0), amount=(0.8, 2.0))],
                     weights=[0.6, 0.4]),
        JPEG(quality=(70, 95)),
    ])


#: the shares of the ``camera`` mix (see ``_camera``)
CAMERA_SHARES = {"untouched": 0.08, "soft-camera": 0.50, "missed-focus": 0.14, "dim": 0.16, "isp-sharpened": 0.12}


def _camera() -> Degradation:
    """What kdcam actually sees: the sender's camera frame, before any call codec.

    One of five kinds of frame, in the shares of ``CAMERA_SHARES``:

    * 8% untouched: a perfect frame must come out as it went in;
    * 50% an ordinary webcam in ordinary light (``_soft_camera``: soft optics or a missed
      focus, a sensor mode scaled up, light noise and the ISP's denoise, MJPEG), a third of
      which has sharp optics, so the model learns to leave those alone;
    * 14% a missed focus in good light (``_missed_focus``: strong defocus, little noise,
      high-quality MJPEG), where a sharpener must act most;
    * 16% a dim room (``_dim``: the most common place for an evening call, and the frame that
      gains least from a plain sharpener: heavy noise under the camera's own denoiser);
    * 12% a camera that already sharpens (``_isp_sharpened``): the do-no-harm case of the
      mix, where adding more sharpening is always wrong.
    """
    kinds = {
        "untouched": Identity(),
        "soft-camera": _soft_camera(),
        "missed-focus": _missed_focus(),
        "dim": _dim(),
        "isp-sharpened": _isp_sharpened(),
    }
    return RandomChoice([kinds[name] for name in CAMERA_SHARES], weights=list(CAMERA_SHARES.values()))


def _webcam() -> Degradation:
    """The training mix: optics, then sensor, then scaling and compression, as in a call.

    Damage ranges from none to heavy. A good webcam on a good link gives a nearly clean
    frame, and a model that only ever saw heavy damage sharpens those frames anyway and
    makes them worse; so every stage can be mild or absent (about 1 crop in 12 is
    untouched apart from noise).
    """
    return Compose(
        [
            Maybe(
                RandomChoice(
                    [GaussianBlur(sigma=(0.3, 2.0)), DiskBlur(radius=(0.6, 3.0)), MotionBlur(length=(2.0, 9.0))],
                    weights=[0.45, 0.3, 0.25],
                ),
                p=0.6,
            ),
            Maybe(Noise(read=(0.002, 0.02), shot=(0.0, 0.01), luma_fraction=(0.6, 0.9)), p=0.35),
            RandomChoice(
                [
                    Resize(factor=(1.1, 3.0), down=("bicubic", "area"), up=("bicubic", "bilinear")),
                    Resize(
                        factor=(1.25, 2.5),
                        down=("area", "bicubic"),
                        up=("bilinear", "bicubic"),
                        inner=JPEG(quality=(20, 80)),
                    ),
                    JPEG(quality=(20, 85)),
                    Identity(),
                ],
                weights=[0.35, 0.35, 0.1, 0.2],
            ),
        ]
    )


def _webcam_heavy() -> Degradation:
    """The first training mix: always scaled or compressed, mostly blurred (stage 1 of the
    shipped teacher; ``webcam`` replaced it because it taught models to over-sharpen)."""
    return Compose(
        [
            Maybe(
                RandomChoice(
                    [GaussianBlur(sigma=(0.6, 2.0)), DiskBlur(radius=(1.0, 3.0)), MotionBlur(length=(3.0, 9.0))],
                    weights=[0.45, 0.3, 0.25],
                ),
                p=0.75,
            ),
            Maybe(Noise(read=(0.004, 0.02), shot=(0.0, 0.01), luma_fraction=(0.6, 0.9)), p=0.5),
            RandomChoice(
                [
                    Resize(factor=(1.25, 3.0), down=("bicubic", "area"), up=("bicubic", "bilinear")),
                    Resize(
                        factor=(1.25, 2.5),
                        down=("area", "bicubic"),
                        up=("bilinear", "bicubic"),
                        inner=JPEG(quality=(20, 60)),
                    ),
                    JPEG(quality=(20, 60)),
                ],
                weights=[0.4, 0.4, 0.2],
            ),
        ]
    )


#: preset name -> factory of a fresh Degradation
PRESETS: dict[str, Callable[[], Degradation]] = {
    # the sender's camera frame (soft optics, noise, ISP, MJPEG, a share of sharp frames):
    # the training mix of the default
    "camera": _camera,
    # the two kinds of frame of the camera mix that plain sharpeners get wrong, scored on their own
    "dim": _dim,
    "isp-sharpened": _isp_sharpened,
    # the photo untouched: sharpening it must change (almost) nothing
    "clean": Identity,
    # not a camera's damage but soft content (a soft subject, a soft photo): applied to the REFERENCE of a
    # share of training crops (DataConfig.soft_reference), it teaches that a soft-looking frame is not always
    # a blurred one, which keeps a model from sharpening frames that are as sharp as they get
    "soft-reference": lambda: RandomChoice(
        [GaussianBlur(sigma=(0.4, 1.2)), Resize(factor=(1.3, 2.5), down="area", up=("bicubic", "bilinear"))],
        weights=[0.6, 0.4],
    ),
    # the seed project's degradation: bicubic x2 down, bicubic up
    "bicubic-x2": lambda: Resize(factor=2.0, down="bicubic", up="bicubic"),
    # out of focus: a Gaussian or a disk (pillbox) blur
    "defocus": lambda: RandomChoice([GaussianBlur(sigma=(0.8, 2.0)), DiskBlur(radius=(1.0, 3.0))]),
    # small camera or subject motion
    "motion": lambda: MotionBlur(length=(3.0, 9.0), angle=(0.0, 180.0)),
    # a video call: downscaled, JPEG-compressed at low quality, scaled back up
    "stream": lambda: Resize(
        factor=(1.5, 2.5), down=("area", "bicubic"), up=("bilinear", "bicubic"), inner=JPEG(quality=(20, 60))
    ),
    # the same through a real video codec (MPEG-4 Part 2 via OpenCV/FFmpeg)
    "stream-mpeg4": lambda: Resize(
        factor=(1.5, 2.5), down=("area", "bicubic"), up=("bilinear", "bicubic"), inner=VideoCodec()
    ),
    # the training mix of all of the above plus sensor noise
    "webcam": _webcam,
    # the earlier, heavier mix (always scaled or compressed)
    "webcam-heavy": _webcam_heavy,
    # a fixed Gaussian blur, used by an acceptance check
    "gaussian-1.4": lambda: GaussianBlur(sigma=1.4),
}


def get_preset(name: str) -> Degradation:
    """The preset ``name`` as a fresh Degradation; KdcamError listing valid names if unknown."""
    try:
        factory = PRESETS[name]
    except KeyError:
        raise KdcamError(f"unknown degradation preset {name!r}; choose one of: {', '.join(PRESETS)}") from None
    return factory()


def resolve(preset: str | Degradation) -> Degradation:
    """A Degradation from a preset name or a Degradation (returned as is)."""
    if isinstance(preset, Degradation):
        return preset
    if isinstance(preset, str):
        return get_preset(preset)
    if callable(preset):
        return preset  # any (image, rng) -> image callable works too
    raise KdcamError(f"expected a preset name or a Degradation, got {type(preset).__name__}")


def degrade(image: np.ndarray, preset: str | Degradation, *, seed: int) -> np.ndarray:
    """``image`` (HxWx3 BGR, float32 [0, 1] or uint8) degraded by ``preset`` with ``seed``.

    Returns float32 HxWx3 in [0, 1]; the same image, preset and seed (a non-negative
    integer) give bit-identical output.
    """
    if seed < 0:
        raise KdcamError(f"seed must be a non-negative integer, not {seed}")
    degradation = resolve(preset)
    rng = np.random.default_rng(seed)
    return finish(degradation(as_float_bgr(image), rng))
