"""The verdicts of scripts/cv/report.py follow the decision rule written in docs/cv/README.md
(rules 2 and 3, the addendum for post-processing and per-fold ensembles), on records built here
with known differences."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "cv"))
import report  # noqa: E402

PATIENTS = 10  # per fold


def folds(dice_by_fold, sha="m", variant=None):
    """{fold: record} with the given per-patient Dice lists; fold f holds out f0..f9."""
    out = {}
    for f, dice in dice_by_fold.items():
        names = [f"P{f}_{i}" for i in range(len(dice))]
        r = {"fold": f, "held_out": names, "model_sha256": sha,
             "patients": {n: {"volume_dice": d} for n, d in zip(names, dice)}}
        if variant:
            r["variant"] = variant
        out[f] = r
    return out


def base(n_folds=5, value=0.8):
    return folds({f: [value] * PATIENTS for f in range(n_folds)})


def shifted(n_folds, by_fold, value=0.8):
    return folds({f: [value + by_fold(f)] * PATIENTS for f in range(n_folds)})


def test_a_candidate_clearly_ahead_on_five_folds_is_kept():
    v = report.compare(shifted(5, lambda f: 0.02), base())
    assert v["verdict"] == "kept (rule 2)"
    assert v["mean_difference"] == pytest.approx(0.02)
    assert v["folds_ahead"] == 5


def test_a_gain_under_0_01_is_not_kept():
    assert report.compare(shifted(5, lambda f: 0.009), base())["verdict"] == "not kept (rule 2)"


def test_more_patients_under_0_5_are_not_kept_and_those_under_0_3_counted():
    cand = shifted(5, lambda f: 0.03)
    cand[2]["patients"]["P2_0"]["volume_dice"] = 0.45
    cand[3]["patients"]["P3_0"]["volume_dice"] = 0.25
    v = report.compare(cand, base())
    assert v["under_0_5"] == [2, 0]
    assert v["under_0_3"] == [1, 0]
    assert v["verdict"] == "not kept (rule 2)"


def test_a_mean_gain_from_two_folds_is_not_kept():
    # +0.06 on two folds, -0.005 on three: mean +0.021, ahead in 2 of 5.
    v = report.compare(shifted(5, lambda f: 0.06 if f < 2 else -0.005), base())
    assert v["mean_difference"] == pytest.approx(0.021)
    assert v["folds_ahead"] == 2
    assert v["verdict"] == "not kept (rule 2)"


def test_the_screen_drops_a_candidate_beyond_minus_0_02_on_two_folds():
    assert report.compare(shifted(2, lambda f: -0.03), base())["verdict"] == "screened out (rule 3)"
    assert report.compare(shifted(2, lambda f: -0.015), base())["verdict"] == "undecided (2 of 5 folds)"


def test_partial_folds_decide_nothing_in_a_candidates_favour():
    assert report.compare(shifted(4, lambda f: 0.05), base())["verdict"] == "undecided (4 of 5 folds)"


def test_records_that_held_out_other_patients_are_refused():
    other = base()
    other[1]["held_out"] = ["someone else"] + other[1]["held_out"][1:]
    with pytest.raises(SystemExit):
        report.compare(base(), other)


def test_post_processing_needs_the_addendums_margin():
    plain = base()
    ok = shifted(5, lambda f: 0.006)
    for r in ok.values():
        r["variant"] = "largest"
    assert report.compare_variant(ok, plain)["verdict"].startswith("kept (addendum")
    small = shifted(5, lambda f: 0.004)
    for r in small.values():
        r["variant"] = "largest"
    assert report.compare_variant(small, plain)["verdict"] == "not kept (addendum)"
    # Ahead in 3 of 5 folds only, though +0.006 on average.
    three = shifted(5, lambda f: 0.012 if f < 3 else -0.003)
    assert report.compare_variant(three, plain)["verdict"] == "not kept (addendum)"


def test_a_variant_of_another_model_file_is_refused():
    var = folds({f: [0.81] * PATIENTS for f in range(5)}, sha="other", variant="largest")
    with pytest.raises(SystemExit):
        report.compare_variant(var, base())


def test_a_per_fold_ensemble_is_judged_against_its_better_member():
    recs = {"baseline": base(2, 0.80), "darkcore": base(2, 0.82), "baseline+darkcore": base(2, 0.83)}
    assert report.reference("baseline+darkcore", recs) == "darkcore"
    assert report.reference("darkcore", recs) == report.BASELINE


def test_the_figures_count_patients_under_the_thresholds():
    f = report.figures(folds({0: [0.9, 0.6, 0.45, 0.2], 1: [0.8, 0.7]}))
    assert f["patients"] == 6
    assert f["under_0_5"] == 2 and f["under_0_3"] == 1
    assert f["worst"] == 0.2 and f["worst_patient"] == "P0_3"
    assert f["median"] == pytest.approx(0.65)
    assert f["fold_means"] == {"0": pytest.approx(0.5375), "1": pytest.approx(0.75)}
