"""Light, label-preserving training augmentation, applied on the fly in the ``tf.data`` input pipeline.

    aug = build_augmentation("shift", seed=0)      # a keras.Sequential of random layers, or None for "none"
    batch = aug(batch, training=True)

Policies: ``none``; ``shift`` for handwriting (small translation, rotation and zoom, no flips: a mirrored 2
is not a 2); ``flip-shift`` for objects and clothes (horizontal flip plus translation); ``flip-shift-erase``
adds random erasing (Zhong et al., 2017: a random patch blanked out in half the images). The layers never enter
the exported model: augmentation happens in the input pipeline only.
"""

from __future__ import annotations

from edgecnn.common.errors import check_choice
from edgecnn.common.native_logs import import_tf

_, keras = import_tf()
layers = keras.layers

POLICIES = {
    "none": "no augmentation",
    "shift": "translate up to 10%, rotate up to 10 degrees, zoom up to 10%",
    "flip-shift": "horizontal flip, translate up to 10%",
    "flip-shift-erase": "flip-shift, then blank a random patch (14-57% of each side) in half the images",
}


def build_augmentation(policy: str, seed: int = 0):
    """The random layers for ``policy`` (see POLICIES), or None for ``none``."""
    check_choice("augmentation", policy, POLICIES)
    fill = {"fill_mode": "nearest"}  # repeats the border: background for digits and clothes, plausible for photos
    if policy == "shift":
        stack = [layers.RandomTranslation(0.1, 0.1, seed=seed, **fill),
                 layers.RandomRotation(10 / 360, seed=seed + 1, **fill),
                 layers.RandomZoom(0.1, seed=seed + 2, **fill)]
    elif policy in ("flip-shift", "flip-shift-erase"):
        stack = [layers.RandomFlip("horizontal", seed=seed), layers.RandomTranslation(0.1, 0.1, seed=seed + 1, **fill)]
        if policy == "flip-shift-erase":  # fill 0: the background of [0, 1] images, the mean of standardized ones
            stack.append(layers.RandomErasing(factor=(0.5, 0.5), fill_value=0.0, seed=seed + 2))
    else:
        return None
    return keras.Sequential(stack, name=f"augment_{policy.replace('-', '_')}")
