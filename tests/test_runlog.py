"""What a training run records (mmv_lite.runlog)."""

import pytest

from mmv_lite.runlog import MetricsLog, read_metrics


def test_read_metrics_flattens_validation_lines(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text(
        '{"step": 1, "loss": 7.0, "loss_va": 3.0}\n'
        '{"step": 2, "val": {"t2v": {"R@5": 37.5, "R@1": 7.1}, "v2a": {"R@5": 10.4}}}\n'
    )
    recs = read_metrics(p)
    assert recs == [{"step": 1, "loss": 7.0, "loss_va": 3.0}, {"step": 2, "val t2v R@5": 37.5, "val v2a R@5": 10.4}]
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        read_metrics(tmp_path / "nope.jsonl")


def test_metrics_log_drops_the_lines_a_resumed_run_will_redo(tmp_path):
    p = tmp_path / "metrics.jsonl"
    log = MetricsLog(p, None, enabled=True)
    for step in (10, 20, 30):
        log.write(step=step, loss=1.0 / step)
    MetricsLog(p, 20, enabled=True)  # resumed from the checkpoint of step 20
    assert [r["step"] for r in read_metrics(p)] == [10, 20]
    MetricsLog(p, None, enabled=True)  # a new run starts an empty log
    assert read_metrics(p) == []
