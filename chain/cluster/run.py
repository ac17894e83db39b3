"""The driver of a sharded run: connect to Ray, run one task per shard, join, publish or clean up."""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import signal
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from chain.bounds import parse_cluster
from chain.checks import CheckedRun
from chain.cluster.join import join_folders, join_videos, link_or_copy, part_records, write_records
from chain.cluster.plan import Shard, plan_shards, run_frames
from chain.config import RunConfig
from chain.engine.batches import Part
from chain.engine.pipeline import Chain, Progress
from chain.engine.summary import RunSummary, SummaryFile, audio_note, publish_run, tracked_figures
from chain.errors import ChainError, first_line
from chain.media import SourceInfo, Trim, open_audio, open_source
from chain.media.outputs import Outputs, option_name
from chain.media.source import InputDamage
from chain.media.targets import Staged, discard, publish_all, remove_stale_staging, staging_path
from chain.signals import Terminated, deferred_signals

#: Ray's own retries of a shard whose task raised or whose worker died.
DEFAULT_RETRIES = 3
_INSTALL = "--cluster needs Ray: pip install 'chain[cluster]' (or pip install ray)"


def run_sharded(config: RunConfig | CheckedRun, *, factory: Callable[[], Chain], warmup: int = 0, look_ahead: int = 0,
                margin: int = 0, progress: Progress | None = None, retries: int = DEFAULT_RETRIES) -> RunSummary:
    """Run ``factory()``'s chain over ``config``'s input in shards on a Ray cluster, and write its outputs.

    Args:
        config: the run (or a `CheckedRun`: its input is not opened again to learn what it is);
            ``config.cluster`` is ``"ray"`` for a local Ray instance (or the one this
            process already started; also when None), ``"auto"`` or ``"ray://HOST:PORT"`` for an
            existing cluster; ``shards`` or ``shard_seconds`` say how many shards or how long each
            (default: one per CPU or GPU). Each shard runs it with its own outputs and trim.
        factory: builds the chain on each worker (weights load there, from the same paths); it and
            ``config`` are pickled to the workers.
        warmup: frames before each shard that go through the segmenter unwritten (``--smooth``).
        look_ahead: frames after each shard that its segmenter reads unwritten (``--smooth window``).
        margin: frames on either side of each shard that are painted unwritten (``--deflicker``), read
            on top of ``warmup`` and ``look_ahead``.
        retries: how often Ray retries a failed shard before the run stops.

    The source, the weights and the outputs' folders must be at the same paths on every worker.
    """
    checked = config if isinstance(config, CheckedRun) else None
    config = checked.config if checked is not None else config
    source, outputs, trim = config.source, config.outputs, config.trim
    info = probe_video(config, "--cluster", "run on one machine", checked.info if checked is not None else None)
    ray = _ray(config.cluster or "ray")
    started = time.perf_counter()
    frames = run_frames(source, trim)
    shards, shard_seconds = config.shards, config.shard_seconds
    wanted = shards if shards is not None or shard_seconds is not None else _slots(ray)
    plan = plan_shards(frames, shards=wanted if shard_seconds is None else None, shard_seconds=shard_seconds,
                       warmup=warmup + margin)
    split_seconds = time.perf_counter() - started
    given = outputs.given()
    parts_dirs = {name: staging_path(path) for name, path in given.items()}
    stagings: dict[str, Path] = {}
    try:
        for name, folder in parts_dirs.items():
            folder.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_staging(given[name])  # what killed runs left here (not their outputs)
            folder.mkdir()
        results = _run_tasks(ray, plan, config, parts_dirs, factory, warmup=warmup, look_ahead=look_ahead, margin=margin,
                             progress=progress, total=len(frames.times), retries=retries)
        return publish_parts(config, info, plan, results, parts_dirs, stagings, started,
                             extra={"cluster": {"shards": len(plan), "split_seconds": round(split_seconds, 3)}})
    finally:
        with deferred_signals():  # a second Ctrl-C must not cut the clean-up short
            for path in (*stagings.values(), *parts_dirs.values()):
                discard(path)


def probe_video(config: RunConfig, option: str, instead: str, info: SourceInfo | None = None) -> SourceInfo:
    """The input's facts, once it is known to be a video a run can split into parts (``option``
    names the split in messages, ``instead`` what to do otherwise). ``info``: what `check_run`
    read of it already (the input is then not opened again)."""
    if config.fps is not None:
        raise ChainError(f"--fps cannot be combined with {option} yet (its parts keep the input's frame times); "
                         f"convert the frame rate first, or {instead}")
    if info is None:
        with open_source(config.source, trim=config.trim, size=config.working_size) as probe:
            info = probe.info
    if info.kind != "video":
        what = {"images": "an image folder", "animation": "an animated image"}.get(info.kind, "an image")
        raise ChainError(f"{option} splits video files into parts; {config.source} is {what}: {instead}")
    return info


def _ray(cluster: str):  # noqa: ANN202 (the ray module)
    """Ray, connected: to a new local instance (``ray``), or to a cluster (``auto``, ``ray://HOST:PORT``).

    ``ray.init`` runs with stop signals held: interrupted half-way, Ray's threads and the processes it
    had started were left in a state its exit handler crashed on (SIGSEGV after the "interrupted"
    line). A Ctrl-C that arrived meanwhile shuts Ray down again and then stops the run.
    """
    address = _address(cluster)
    try:
        import ray
    except ImportError:
        raise ChainError(_INSTALL) from None
    if ray.is_initialized():
        return ray
    if address is not None and address.startswith("ray://") and importlib.util.find_spec("grpc") is None:
        raise ChainError(f"--cluster {cluster} connects through Ray Client, which is not installed: "
                         "pip install 'chain[cluster]' (or pip install 'ray[client]')")
    with deferred_signals() as received, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if address is None:
                ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            ray.shutdown()
            # Ray Client warns of the time-out too, in two lines of its own: the error says it in one.
            raise ChainError(f"cannot reach the Ray cluster {cluster}: {first_line(error)}") from None
        if received:
            ray.shutdown()
    for warning in caught:  # Ray started: what it warned of stands
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if received:
        raise Terminated(received[0]) if received[0] != signal.SIGINT else KeyboardInterrupt
    return ray


def _address(cluster: str) -> str | None:
    """``--cluster`` as ``ray.init``'s address: None for a local instance (``ray``)."""
    cluster = parse_cluster(cluster)
    return None if cluster == "ray" else cluster


def quiet_ray() -> None:
    """Ray's own log lines (its token-authentication notice, which it logs as a warning whenever a local
    instance starts) are hidden: ``-q`` shows only errors. Ray logs through the ``ray`` logger; chain
    does not let Ray configure logging, but importing ray gives that logger a handler at INFO: so ray
    is imported first (when installed; `_ray` says how to get it otherwise)."""
    try:
        import ray  # noqa: F401 — for its logging set-up, which must come before ours
    except ImportError:
        return
    logging.getLogger("ray").setLevel(logging.ERROR)


def _slots(ray) -> int:  # noqa: ANN001
    resources = ray.cluster_resources()
    return max(1, int(resources.get("GPU", 0) or resources.get("CPU", 1)))


def _part_outputs(outputs: Outputs, parts_dirs: dict[str, Path], shard: Shard) -> Outputs:
    """Where one shard writes: a part of each output inside that output's hidden parts folder."""
    names = {}
    for name, path in outputs.given().items():
        suffix = path.suffix if outputs.kind(name) in ("video", "image") else ""
        names[name] = parts_dirs[name] / (f"{shard.number:05d}" + (".json" if name == "summary" else suffix))
    return Outputs(**names)


def _run_tasks(ray, plan: list[Shard], config: RunConfig, parts_dirs: dict[str, Path],  # noqa: ANN001
               factory: Callable[[], Chain], *, warmup: int, look_ahead: int, margin: int, progress: Progress | None,
               total: int, retries: int) -> list[tuple[RunSummary, Part]]:
    """One Ray task per shard; the shards' progress feeds one bar; the first shard to fail for good
    cancels the others and stops the run."""
    from ray.exceptions import RayError, TaskCancelledError

    source = config.source
    counter = _Counter.remote() if progress else None
    gpus = 1 if ray.cluster_resources().get("GPU", 0) else 0
    task = ray.remote(num_gpus=gpus, max_retries=retries, retry_exceptions=True)(_shard_task)
    refs = {task.remote(factory, shard_config(config, parts_dirs, shard, min(look_ahead + margin, total - shard.stop)),
                        Part(first=shard.first, warmup=min(warmup + margin, shard.first), stop=shard.stop, margin=margin),
                        shard.number, counter): shard
            for shard in plan}
    results: dict[int, tuple[RunSummary, Part]] = {}
    if progress:
        progress.start(total, source.name)
    shown = 0
    try:
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=0.25)
            for ref in ready:
                shard = refs[ref]
                try:
                    result = ray.get(ref)
                except (RayError, TaskCancelledError) as error:
                    raise ChainError(f"{shard.describe(len(plan))} failed after {retries} retries: {_reason(error)}; "
                                     "nothing was written") from None
                if isinstance(result, ChainError):
                    raise result  # the user's mistake, the same on every worker: not retried
                results[shard.number] = result
            if counter is not None:
                done = ray.get(counter.total.remote())
                progress.advance(done - shown)
                shown = done
    except BaseException:
        _cancel(ray, [ref for ref, shard in refs.items() if shard.number not in results])
        raise
    finally:
        if progress:
            progress.stop()
    return [results[shard.number] for shard in plan]


def _cancel(ray, refs: list) -> None:  # noqa: ANN001
    """Stop running shards and wait until their workers are gone, so that none writes after clean-up."""
    for ref in refs:
        ray.cancel(ref, force=True)
    if refs:
        ray.wait(refs, num_returns=len(refs), timeout=60)


def _reason(error: Exception) -> str:
    cause = getattr(error, "cause", None)
    if cause is not None and not isinstance(cause, type(error)):
        return f"{type(cause).__name__}: {cause}".splitlines()[0]
    text = str(error).strip().splitlines()
    if "WorkerCrashed" in type(error).__name__ or "died" in str(error).lower():
        return "its worker died"
    return f"{type(error).__name__}: {text[0] if text else ''}"


def shard_config(config: RunConfig, parts_dirs: dict[str, Path], shard: Shard, read_past: int = 0) -> RunConfig:
    """The run of one shard: its part of every output, its frames (and ``read_past`` more to look
    ahead at); the rest as the whole run's."""
    return dataclasses.replace(config, outputs=_part_outputs(config.outputs, parts_dirs, shard),
                               trim=shard.trim(config.trim, read_past=read_past))


def _shard_task(factory: Callable[[], Chain], config: RunConfig, part: Part, number: int,
                counter) -> tuple[RunSummary, Part] | ChainError:  # noqa: ANN001
    """On a worker: build the chain and run it over one shard. A `ChainError` is returned, not
    raised, so that Ray does not retry what would fail the same way again."""
    try:
        progress = _ShardProgress(counter, number) if counter is not None else None
        return run_part(factory(), config, part, progress=progress)
    except ChainError as error:
        return error


def run_part(chain: Chain, config: RunConfig, part: Part, *, progress: Progress | None = None,
             option: str = "--cluster") -> tuple[RunSummary, Part]:
    """Run ``chain`` over one part of a run (``config`` is the part's: its outputs and trim)."""
    if chain.synthesizer is not None:
        refusal = chain.synthesizer.unshardable()
        if refusal:
            raise ChainError(f"{refusal}: it cannot run with {option}; drop {option} or that option")
        if chain.synthesizer.anchored_on_first_frame and part.painted_from > 0:
            first_frame = Trim(config.trim.start, max_frames=1)
            with open_source(config.source, trim=first_frame, size=config.working_size) as first:
                part.anchor = next(iter(first)).rgb
    return chain(config, progress=progress, part=part), part


class _ShardProgress:
    """A shard's progress, sent to the driver's counter (a retried shard starts again from 0)."""

    def __init__(self, counter, number: int) -> None:  # noqa: ANN001
        self._counter, self._number, self._done = counter, number, 0

    def start(self, total: int | None, description: str) -> None:
        self._done = 0
        self._counter.set.remote(self._number, 0)

    def advance(self, frames: int) -> None:
        self._done += frames
        self._counter.set.remote(self._number, self._done)

    def stop(self) -> None:
        pass


class _CounterActor:
    """Frames done per shard; the driver shows the sum."""

    def __init__(self) -> None:
        self.done: dict[int, int] = {}

    def set(self, shard: int, frames: int) -> None:
        self.done[shard] = frames

    def total(self) -> int:
        return sum(self.done.values())


class _LazyCounter:
    """`_CounterActor` as a Ray actor, made on first use (Ray is imported only with --cluster)."""

    def remote(self):  # noqa: ANN201
        import ray

        return ray.remote(num_cpus=0)(_CounterActor).remote()


_Counter = _LazyCounter()


def publish_parts(config: RunConfig, info, plan: list[Shard], results: list[tuple[RunSummary, Part]],  # noqa: ANN001
                  parts_dirs: dict[str, Path], stagings: dict[str, Path], started: float,
                  extra: dict[str, dict]) -> RunSummary:
    """Join the parts of every output under its staging name (listed in ``stagings``, which the
    caller discards if this fails), write the summary file, and publish all outputs together."""
    outputs, given = config.outputs, config.outputs.given()
    joined = time.perf_counter()
    summary, boundaries = _join(config.source, outputs, info, config.trim, plan, results, parts_dirs, stagings,
                                started)
    for name, values in extra.items():
        summary.extra[name] = {**values, "join_seconds": round(time.perf_counter() - joined, 3)}
    staged = [Staged(staging, given[name], outputs.kind(name), option_name(name)) for name, staging in stagings.items()]
    summary_file = None
    if outputs.summary is not None:
        summary_file = SummaryFile(Path(outputs.summary))
        stagings["summary"] = summary_file.staging
        for i, (shard, flicker) in enumerate(zip(plan, boundaries)):
            records = part_records(parts_dirs["summary"] / f"{shard.number:05d}.json")
            if records and flicker is not None:
                records[0]["flicker"] = round(flicker, 5)  # across the boundary, as in one pass
            write_records(summary_file.stream, records, first=i == 0)
    publish_run(summary, staged, summary_file, published=stagings.clear, publish=publish_all)
    return summary


def _join(source: Path, outputs: Outputs, info, trim: Trim, plan: list[Shard],  # noqa: ANN001 (SourceInfo)
          results: list[tuple[RunSummary, Part]], parts_dirs: dict[str, Path], stagings: dict[str, Path],
          started: float) -> tuple[RunSummary, list[float | None]]:
    """Join every output's parts under its staging name; the merged summary (the file comes later)."""
    copied = None
    for name, target in outputs.given().items():
        if name == "summary":
            continue
        stagings[name] = staging = staging_path(target)
        kind = outputs.kind(name)
        parts = [parts_dirs[name] / Path(summary.outputs[name]).name for summary, _ in results]
        if kind == "video":
            audio = None
            if name == "video" and info.audio_codec is not None:
                audio = open_audio(source, start=trim.start, duration=info.duration)
            joined_copied = join_videos(parts, staging, target, audio)
            copied = joined_copied if name == "video" else copied
        elif kind == "folder":
            join_folders([(part, shard.first) for part, shard in zip(parts, plan)], staging)
        elif kind == "image":
            link_or_copy(parts[0], staging)  # one frame, so one shard
    return _merged_summary(info, outputs, results, copied, started)


def _merged_summary(info, outputs: Outputs, results: list[tuple[RunSummary, Part]], copied: bool | None,  # noqa: ANN001
                    started: float) -> tuple[RunSummary, list[float | None]]:
    """The run's totals from its shards', and each shard's label flicker across its first boundary."""
    first_summary, first_part = results[0]
    labels, changes, steadiness = first_part.labels, first_part.changes, first_part.steadiness
    boundaries = [None]
    stage_seconds: dict[str, float] = {}
    for summary, _part in results:
        for stage, seconds in summary.stage_seconds.items():
            stage_seconds[stage] = stage_seconds.get(stage, 0.0) + seconds
    for _summary, part in results[1:]:
        boundaries.append(labels.join(part.labels) if labels is not None else None)
        if changes is not None:
            changes.join(part.changes)
        if steadiness is not None and part.steadiness is not None:
            steadiness.join(part.steadiness)
    damages = [summary.input_damage for summary, _ in results if summary.input_damage is not None]
    damage = None
    if damages:
        last = results[-1][0].input_damage
        damage = InputDamage(skipped_frames=sum(d.skipped_frames for d in damages),
                             expected=last.expected if last else None,
                             decoded=last.decoded if last else sum(s.frames for s, _ in results))
    video = outputs.video
    audio = audio_note(info.audio_codec, written=video is not None and outputs.kind("video") == "video",
                       copied=bool(copied))
    merged = dataclasses.replace(
        first_summary, frames=sum(summary.frames for summary, _ in results), seconds=time.perf_counter() - started,
        stage_seconds=stage_seconds,
        outputs={name: str(path) for name, path in outputs.given().items() if name != "summary"}, audio=audio,
        input_damage=damage, steadiness=steadiness.to_dict() if steadiness else None, extra={},
        **tracked_figures(labels, changes))
    return merged, boundaries

