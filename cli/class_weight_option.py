"""`--class_weight balanced|none|ID:WEIGHT,...`: how much each class's examples count in the loss.

The value is kept as text ("balanced", "none" or "0:1,1:5"), which config.yaml,
the results and HParams hold as it is; `parse_class_weight` turns it into
what the runner needs. Whether the task has classes is known only once the
labels are loaded (runner/class_weights.py); an explicit --task says it now.
"""

import math

from kerasrun.core.groups import OptionGroup
from kerasrun.core.options import Arg, Kind

# Keras's class_weight weighs examples by one class id each: not values, nor several 0/1 labels.
NO_CLASSES = ("regression", "multilabel")


def parse_class_weight(text):
    """Returns None (none), "balanced", or {class id: weight} for a --class_weight text.

    Raises:
        ValueError: saying what is accepted.
    """
    word = text.strip().lower()
    if word in ("none", ""):
        return None
    if word == "balanced":
        return "balanced"
    weights = {}
    for item in text.split(","):
        key, colon, number = item.strip().partition(":")
        try:
            class_id, weight = int(key), float(number)
        except ValueError:
            raise ValueError("must be balanced, none, or class ids with their weights, "
                             "such as 0:1,1:5") from None
        if not colon or class_id < 0:
            raise ValueError("must be balanced, none, or class ids (0 or more) with their weights, "
                             "such as 0:1,1:5")
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"class {class_id}: a weight must be a finite number of at least 0, not {number.strip()}")
        if class_id in weights:
            raise ValueError(f"gives class {class_id} twice")
        weights[class_id] = weight
    if not any(weights.values()):
        raise ValueError("every weight is 0: nothing would be learned")
    return weights


def format_weights(weights):
    """Returns {class id: weight} as `0: 0.55, 1: 5.5` (the way a user reads and types it)."""
    return ", ".join(f"{class_id}: {weight:.4g}" for class_id, weight in sorted(weights.items()))


class ClassWeights(Kind):
    """balanced, none, or `id:weight,...`; in YAML also a mapping {id: weight}."""

    description = "balanced, none, or ID:WEIGHT,... such as 0:1,1:5"

    def from_text(self, text):
        parsed = parse_class_weight(text)
        if parsed is None or parsed == "balanced":
            return parsed or "none"
        return ",".join(f"{class_id}:{weight:g}" for class_id, weight in parsed.items())

    def from_yaml(self, value):
        if isinstance(value, dict):
            return self.from_text(",".join(f"{key}:{weight}" for key, weight in value.items()))
        if value is None:
            return "none"
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 1:5 as the number 65 (base 60).
            raise ValueError("must be text: quote it ('1:5'), or write a mapping {0: 1, 1: 5}")
        return super().from_yaml(value)


CLASS_WEIGHT = OptionGroup(
    name="",
    title="Class weights",
    summary="How much each class's examples count in the loss (classification and binary tasks).",
    args=(
        Arg("class_weight", ClassWeights(), "none",
            "balanced weighs each class by n_examples / (n_classes * its count) in the training labels (so "
            "rare classes count as much as common ones, and the run prints the weights); ID:WEIGHT,... "
            "gives them (unnamed classes weigh 1); none weighs every example 1."),
    ),
)


def check_class_weight(checker):
    """Refuses --class_weight with a --task that has no classes (the labels decide later under auto)."""
    task = checker.values["task"]
    if checker.values["class_weight"] != "none" and task in NO_CLASSES:
        checker.fail("class_weight", no_classes_message(task))


def no_classes_message(task):
    """Says why a task takes no class weights."""
    what = "values" if task == "regression" else "several 0/1 labels per example"
    return (f"the task is {task}, which learns {what}, not one class per example; class weights apply to "
            "classification and binary tasks")
