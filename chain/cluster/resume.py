"""``chain run … --resume``: a run made of parts, which a stopped run continues from.

With ``--resume`` a one-machine run goes through its input in parts (at least 20, of at most 30
seconds each), one after another in this process, exactly as `chain.cluster` runs shards (each
part warms up and looks ahead as a shard does, so the joined outputs equal an uninterrupted run's).
Each finished part stays in a hidden folder beside each output: the sealed staging names chain
already uses for what a run is writing (`chain.media.targets`), with a manifest (``resume.json``)
of the command it belongs to and the parts done. Stopped in any way, even by SIGKILL or a power
cut, the run leaves those folders; started again with the same command and ``--resume``, it
adopts them, does only the parts not done, joins and publishes. A ``--resume`` whose command
differs (input, options, weights) is refused in one line naming the difference. A run of the same
outputs without ``--resume`` removes them, as it removes any part a stopped run left.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chain.checks import CheckedRun
from chain.cluster.plan import Shard, plan_shards, run_frames
from chain.cluster.run import probe_video, publish_parts, run_part, shard_config
from chain.config import RunConfig, StageName
from chain.engine.batches import Part
from chain.engine.pipeline import Chain, Progress
from chain.engine.summary import RunSummary
from chain.errors import ChainError
from chain.media.targets import discard, remove_stale_staging, seal, staging_path, stale_staging
from chain.stages import get_stage

#: A part is at most this long, and a run has at least ``MIN_PARTS`` of them (fewer frames, fewer parts):
#: a stopped run loses at most one part's work.
PART_SECONDS = 30.0
MIN_PARTS = 20
MANIFEST = "resume.json"
#: The parts folders of the resumable runs going on in this process (others of its own are stale).
_IN_USE: set[Path] = set()


def run_resumable(config: RunConfig | CheckedRun, *, factory: Callable[[], Chain], warmup: int = 0,
                  look_ahead: int = 0, margin: int = 0, progress: Progress | None = None) -> RunSummary:
    """Run ``config`` in parts, continuing what a stopped run of the same command finished (a
    `CheckedRun`'s input is not opened again to learn what it is)."""
    checked = config if isinstance(config, CheckedRun) else None
    config = checked.config if checked is not None else config
    info = probe_video(config, "--resume", "run without --resume", checked.info if checked is not None else None)
    started = time.perf_counter()
    frames = run_frames(config.source, config.trim)
    duration = frames.times[-1] + 1 / float(frames.fps)
    plan = plan_shards(frames, shards=max(MIN_PARTS, math.ceil(duration / PART_SECONDS)), warmup=warmup + margin)
    described = describe(config)
    described["parts"] = [[shard.first, shard.stop] for shard in plan]
    parts_dirs, done = _adopt_or_start(config, described)
    _IN_USE.update(parts_dirs.values())
    try:
        return _run_parts(config, factory, info, plan, parts_dirs, done, described, started,
                          warmup=warmup, look_ahead=look_ahead, margin=margin, progress=progress)
    finally:
        _IN_USE.difference_update(parts_dirs.values())


def _run_parts(config: RunConfig, factory: Callable[[], Chain], info, plan: list[Shard],  # noqa: ANN001 (SourceInfo)
               parts_dirs: dict[str, Path], done: list[int], described: dict[str, Any], started: float, *,
               warmup: int, look_ahead: int, margin: int, progress: Progress | None) -> RunSummary:
    """The parts not done, then the join and the publishing; the parts folders go once published."""
    results = {number: _load_result(parts_dirs, number) for number in done}
    chain = factory()
    total = plan[-1].stop
    if progress:
        progress.start(total, config.source.name)
        progress.advance(sum(summary.frames for summary, _ in results.values()))
    stagings: dict[str, Path] = {}
    try:
        for shard in plan:
            if shard.number in results:
                continue
            for folder in parts_dirs.values():  # what a part stopped half-way left
                for leftover in folder.glob(f"{shard.number:05d}*"):
                    discard(leftover)
            part = Part(first=shard.first, warmup=min(warmup + margin, shard.first), stop=shard.stop, margin=margin)
            part_config = shard_config(config, parts_dirs, shard, min(look_ahead + margin, total - shard.stop))
            results[shard.number] = run_part(chain, part_config, part, progress=_Forwarded(progress),
                                             option="--resume")
            _save_result(parts_dirs, shard.number, results[shard.number])
            _write_manifest(parts_dirs, described, sorted(results))
        ordered = [results[shard.number] for shard in plan]
        summary = publish_parts(config, info, plan, ordered, parts_dirs, stagings, started,
                                extra={"resume": {"parts": len(plan), "kept": len(done),
                                                  "frames_kept": sum(results[n][0].frames for n in done)}})
    except BaseException:
        for path in stagings.values():  # the joined outputs, never the parts: those are what --resume keeps
            discard(path)
        raise
    finally:
        if progress:
            progress.stop()
    for folder in parts_dirs.values():
        discard(folder)
    return summary


def describe(config: RunConfig) -> dict[str, Any]:
    """What makes a run's parts the parts of this command: the input (path, size, time), every option
    but the command line's spelling, and a digest of each stage's weights."""
    chain = config.chain.as_dict()
    chain.pop("command", None)
    stat = config.source.stat()
    weights = {kind: _weights_digest(kind, stage, given) for kind, stage, given in
               (("segmenter", config.chain.segmenter, config.chain.seg_weights),
                ("synthesizer", config.chain.synthesizer, config.chain.synth_weights))}
    return {"input": str(config.source.resolve()), "input_bytes": stat.st_size, "input_mtime_ns": stat.st_mtime_ns,
            "trim": [config.trim.start, config.trim.duration, config.trim.max_frames], "size": str(config.size),
            "batch": config.batch_size, "crf": config.crf, "preset": config.preset, "strict": config.strict,
            "outputs": {name: str(path.resolve()) for name, path in config.outputs.given().items()},
            "chain": json.loads(json.dumps(chain, default=str)), "weights": weights}


def _weights_digest(kind: str, stage: StageName | None, given: str | None) -> str | None:
    """SHA-256 over a stage's weight files (where they are files here), else where they are said to be."""
    if stage is None:
        return None
    name, variant = stage
    spec = get_stage(kind, name)
    location = given
    if location is None and spec.weights is not None:
        location = spec.weights(spec.resolve_variant(variant), None).location
    path = Path(location) if location else None
    if path is None or not path.exists():
        return location
    digest = hashlib.sha256()
    for file in sorted([path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]):
        digest.update(str(file.relative_to(path) if file != path else file.name).encode())
        with file.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):  # noqa: B023 (the stream of this file)
                digest.update(block)
    return digest.hexdigest()


def _adopt_or_start(config: RunConfig, described: dict[str, Any]) -> tuple[dict[str, Path], list[int]]:
    """The parts folders of a stopped run of this command, renamed as this process's, and the parts
    it finished; else new, empty ones. A stopped run of other options is refused, naming them."""
    given = config.outputs.given()
    first = sorted(given)[0]
    for folder in _stale_folders(given[first]):
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError):
            continue
        if manifest.get("described") != described:
            raise ChainError(f"--resume: {_difference(manifest.get('described') or {}, described)}; run the same "
                             "command to continue it, or run without --resume to start again")
        folders = {name: Path(path) for name, path in manifest.get("folders", {}).items()}
        if set(folders) != set(given) or not all(path.is_dir() for path in folders.values()):
            continue
        adopted = {}
        for name, path in folders.items():  # ours now: a concurrent run's clean-up must not take them
            adopted[name] = staging_path(given[name])
            path.rename(adopted[name])
        done = [number for number in manifest.get("done", [])
                if all((adopted[name] / f"{number:05d}.done").is_file() for name in adopted)]
        _write_manifest(adopted, described, done)
        _remove_other_stale(given)
        return adopted, done
    _remove_other_stale(given)
    folders = {name: staging_path(path) for name, path in given.items()}
    for folder in folders.values():
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir()
    _write_manifest(folders, described, [])
    return folders, []


def _remove_other_stale(given: dict[str, Path]) -> None:
    """What else stopped runs left beside the outputs (a join half-published, parts of other outputs)."""
    for target in given.values():
        remove_stale_staging(target)


def _stale_folders(target: Path) -> list[Path]:
    """Parts folders (with a manifest) that a stopped run left for ``target``, the newest first (an
    earlier call in this process too, unless it is still running)."""
    folders = [entry for entry in stale_staging(target, own_except=_IN_USE)
               if entry.is_dir() and not entry.is_symlink() and (entry / MANIFEST).is_file()]
    return sorted(folders, key=lambda entry: entry.stat().st_mtime, reverse=True)


def _difference(before: dict[str, Any], now: dict[str, Any], prefix: str = "") -> str:
    """The first setting that differs, as ``the stopped run's X was A, this one's is B``."""
    for key in sorted(set(before) | set(now)):
        old, new = before.get(key), now.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            return _difference(old, new, f"{prefix}{key}.")
        return f"the stopped run's {prefix}{key} was {_shown(old)}, this one's is {_shown(new)}"
    return "the stopped run differs"


def _shown(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _write_manifest(folders: dict[str, Path], described: dict[str, Any], done: list[int]) -> None:
    """``resume.json`` in every parts folder, replaced whole (a stop half-way keeps the previous one)."""
    text = json.dumps({"described": described, "folders": {name: str(path) for name, path in folders.items()},
                       "done": done})
    for folder in folders.values():
        temporary = folder / f".{MANIFEST}.new"
        temporary.write_text(text)
        os.replace(temporary, folder / MANIFEST)


def _save_result(folders: dict[str, Path], number: int, result: tuple[RunSummary, Part]) -> None:
    """A finished part's summary and trackers (for the join), sealed; then a ``.done`` mark in every folder."""
    data = pickle.dumps(result)
    folder = next(iter(folders.values()))
    (folder / f"{number:05d}.result").write_bytes(seal(hashlib.sha256(data).hexdigest()).encode() + data)
    for folder in folders.values():
        (folder / f"{number:05d}.done").touch()


def _load_result(folders: dict[str, Path], number: int) -> tuple[RunSummary, Part]:
    raw = (next(iter(folders.values())) / f"{number:05d}.result").read_bytes()
    mark, data = raw[:8].decode(errors="replace"), raw[8:]
    if not hmac.compare_digest(mark, seal(hashlib.sha256(data).hexdigest())):
        raise ChainError(f"--resume: the kept part {number} beside {next(iter(folders))} was changed since chain "
                         "wrote it; run without --resume to start again")
    return pickle.loads(data)  # noqa: S301 (sealed above: chain wrote these bytes)


class _Forwarded:
    """A part's progress on the run's one bar (the bar is started and stopped by the run)."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress

    def start(self, total: int | None, description: str) -> None:
        pass

    def advance(self, frames: int) -> None:
        if self.progress:
            self.progress.advance(frames)

    def stop(self) -> None:
        pass


__all__ = ["MANIFEST", "run_resumable"]
