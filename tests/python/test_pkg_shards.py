"""`slicewise segment --manifest M --shard I/N` and `slicewise merge-reports`, run as the CLI
binary: every manifest row in exactly one shard, the merged report equal to an unsharded run's."""
import shutil

import pytest

from conftest import SAMPLE, TEST_MODEL, read_json, run_cli, shared_data

N = 3


def manifest(tmp_path):
    """A CSV manifest of 5 rows, two of them files of the same name in different folders (their
    output names must be made unique over the whole manifest, in every shard alike)."""
    images = shared_data() / "msd-hippocampus/images"
    for sub, src in (("a", "hippocampus_003.nii.gz"), ("b", "hippocampus_004.nii.gz")):
        (tmp_path / "data" / sub).mkdir(parents=True)
        shutil.copy(images / src, tmp_path / "data" / sub / "x.nii.gz")
    rows = [SAMPLE, images / "hippocampus_001.nii.gz", "a/x.nii.gz", "b/x.nii.gz",
            images / "hippocampus_006.nii.gz"]
    m = tmp_path / "data" / "inputs.csv"
    m.write_text("subject,input\n" + "".join(f"s{i},{r}\n" for i, r in enumerate(rows)))
    return m, len(rows)


def segment(m, out, *extra, env=None, check=True):
    return run_cli("segment", "--manifest", m, "--model", TEST_MODEL, "--out", out,
                   "--device", "cpu", "--threads", "1", *extra, env=env, check=check)


def comparable(job, out):
    """A job record without what differs between runs (timings) or folders (the output path)."""
    mask = job["mask"]
    name = mask["path"][len(str(out)) + 1:]
    with open(mask["path"], "rb") as f:
        data = f.read()
    keep = {k: v for k, v in job.items() if k not in ("timings", "mask", "previews")}
    return keep, name, mask["bytes"], data


def test_shards_cover_every_row_once_and_merge_into_the_unsharded_report(tmp_path):
    m, rows = manifest(tmp_path)
    out = tmp_path / "out"
    segment(m, out, "--shard", f"0/{N}", "--report", out / "report.json")
    segment(m, out, "--shard", str(N), env={"JOB_COMPLETION_INDEX": "1"})
    segment(m, out, "--shard", f"2/{N}")
    shard_reports = [out / f"report.shard-{i}-of-{N}.json" for i in range(N)]
    seen = []
    for i, p in enumerate(shard_reports):
        r = read_json(p)
        assert r["shard"]["index"] == i and r["shard"]["count"] == N and r["shard"]["rows"] == rows
        assert all(j["row"] % N == i and j["status"] == "ok" for j in r["jobs"]), r["jobs"]
        seen += [j["row"] for j in r["jobs"]]
        assert (p.with_suffix(".csv")).exists()
    assert sorted(seen) == list(range(rows))

    merged_path = out / "report.json"
    run_cli("merge-reports", *reversed(shard_reports), "--out", merged_path)
    merged = read_json(merged_path)
    assert [s["index"] for s in merged["shards"]] == list(range(N))
    assert merged["summary"]["jobs"] == rows and merged["summary"]["ok"] == rows

    single_out = tmp_path / "single"
    segment(m, single_out, "--report", single_out / "report.json")
    single = read_json(single_out / "report.json")
    assert "shard" not in single and "shards" not in single
    assert merged["options"] == single["options"] and merged["model"]["name"] == single["model"]["name"]
    a = [comparable(j, out) for j in merged["jobs"]]
    b = [comparable(j, single_out) for j in single["jobs"]]
    assert [x[:3] for x in a] == [x[:3] for x in b]
    assert [x[3] for x in a] == [x[3] for x in b], "mask bytes differ"
    names = [x[1] for x in a]
    assert len(set(names)) == rows and sum(n.startswith("x_") for n in names) == 2, names


def test_a_rerun_shard_skips_its_finished_jobs_and_merge_refuses_missing_shards(tmp_path):
    m, _ = manifest(tmp_path)
    out = tmp_path / "out"
    segment(m, out, "--shard", f"1/{N}")
    again = segment(m, out, "--shard", f"1/{N}")
    r = read_json(out / f"report.shard-1-of-{N}.json")
    assert r["summary"]["skipped"] == r["summary"]["jobs"] == 2, again.stderr
    p = run_cli("merge-reports", out / f"report.shard-1-of-{N}.json", "--out", out / "report.json",
                check=False)
    assert p.returncode == 2 and "shards 0, 2 of 3 are missing" in p.stderr, p.stderr


@pytest.mark.parametrize("spec,env,needle", [
    ("3", {}, "JOB_COMPLETION_INDEX"),
    ("3/3", {}, "I must be in 0..N"),
    ("x/3", {}, "not a whole number"),
])
def test_bad_shards_are_usage_errors(tmp_path, spec, env, needle):
    m, _ = manifest(tmp_path)
    p = segment(m, tmp_path / "out", "--shard", spec, env=env, check=False)
    assert p.returncode == 2 and needle in p.stderr, p.stderr


def test_three_shards_run_at_once_into_one_folder_give_the_unsharded_outputs(tmp_path):
    """The 3 shards as 3 concurrent processes writing into the same folder (as Kubernetes
    indexed jobs on a shared volume do): their union is one run's masks, byte for byte."""
    import os
    import subprocess

    from conftest import cli_bin

    m, rows = manifest(tmp_path)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "JOB_COMPLETION_INDEX"}
    procs = [subprocess.Popen([cli_bin(), "segment", "--manifest", str(m), "--model", str(TEST_MODEL),
                               "--out", str(out), "--device", "cpu", "--threads", "1",
                               "--shard", f"{i}/{N}"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for i in range(N)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    shard_reports = [out / f"report.shard-{i}-of-{N}.json" for i in range(N)]
    run_cli("merge-reports", *shard_reports, "--out", out / "report.json")
    merged = read_json(out / "report.json")
    assert merged["summary"]["jobs"] == merged["summary"]["ok"] == rows
    single_out = tmp_path / "single"
    segment(m, single_out, "--report", single_out / "report.json")
    single = read_json(single_out / "report.json")
    a = [comparable(j, out) for j in merged["jobs"]]
    b = [comparable(j, single_out) for j in single["jobs"]]
    assert [x[:3] for x in a] == [x[:3] for x in b]
    assert [x[3] for x in a] == [x[3] for x in b], "mask bytes differ"
    assert not list(out.rglob("*.part"))
    assert sorted(p.name for p in out.iterdir() if "_mask." in p.name) == \
        sorted(p.name for p in single_out.iterdir() if "_mask." in p.name)
