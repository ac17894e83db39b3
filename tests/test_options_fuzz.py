"""Options and environment variables, generated (issue 24, items 6 and 10): every value ends in one of
three ways — exit 0 with output, one ``error:`` line with an exit other than 0 and 1, or one
``warning:`` line with output — never a traceback or an internal error.

Hypothesis draws option values and combinations for ``chain run``, ``chain train …`` and ``chain info``
(profiles in tests/conftest.py: ``dev`` by default, ``HYPOTHESIS_PROFILE=ci`` for more examples).
Commands run in this process, like tests/test_bad_inputs.py; only what is read as a process starts
(OpenMP's variables, read once as torch loads) and signals use a subprocess.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from chain import bounds
from chain.bounds import Bound, check_environment, parse_cluster, parse_device, weights_folder
from chain.entry import _out_of_memory, main
from chain.errors import ChainError
from tests.bad_inputs.options import ENV_CASES, NEIGHBOURS, RUN, EnvCase, clip

REPO = Path(__file__).resolve().parents[1]
#: The bounds of the command line's numeric options (each command's ``--size`` is text: see below).
BOUNDS = [bounds.seconds("--start"), bounds.seconds("--duration", positive=True), bounds.count("--max-frames"),
          bounds.FPS, bounds.BATCH, bounds.THREADS, bounds.CRF, bounds.SHARDS, bounds.LATENT_NOISE,
          bounds.LEARNING_RATE, bounds.SEED, bounds.PIXEL_WEIGHT, bounds.PORT, bounds.width("--ngf")]
#: The tests that run whole commands: most examples are refused before any decoding, so they take the
#: profile's number too (dev: 20 examples, 2-3 s a test on 2 cores).
RUNS = settings()
#: Text as a command line delivers it: anything but NUL and lone surrogates.
ARGUMENT_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8)
NON_ASCII_DIGITS = st.text(st.characters(whitelist_categories=("Nd", "No")).filter(lambda c: not c.isascii()),
                           min_size=1, max_size=4)


def hostile_numbers() -> st.SearchStrategy[str]:
    """Neighbours of every kind of number, big integers, any float's repr, and odd text."""
    return st.one_of(st.sampled_from(list(NEIGHBOURS.values())), st.integers(-2**70, 2**70).map(str),
                     st.floats().map(repr), NON_ASCII_DIGITS, ARGUMENT_TEXT)


@contextlib.contextmanager
def working_in(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def cli(*args: str) -> tuple[int, str, str]:
    """``chain ARGS`` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    threads = torch.get_num_threads()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        finally:
            torch.set_num_threads(threads)  # --threads sets it process-wide
    return code, out.getvalue(), err.getvalue()


def assert_ends_well(code: int, err: str) -> list[str]:
    """One of the three endings; returns stderr's lines."""
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    if code == 0:
        assert all(line.startswith("warning:") for line in lines) and len(lines) <= 1, err
    else:
        assert code not in (0, 1), f"exit {code}: {err}"
        assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines


# --- the parsers themselves ---------------------------------------------------------------------------
@pytest.mark.parametrize("bound", BOUNDS, ids=lambda b: b.name)
@given(number=st.integers(-2**70, 2**70))
@example(number=2**63).via("the issue's --batch")
@example(number=0).via("the lowest")
def test_whole_numbers_parse_exactly_inside_the_stated_range(bound: Bound, number: int) -> None:
    inside = (number > bound.low if bound.low_open else number >= bound.low) and number <= bound.high
    if inside:
        assert bound.parse(str(number)) == number and bound.parse(f" {number} ") == number
    else:
        with pytest.raises(ChainError, match=rf"^{bound.name} {number} is out of range: give .*{bound.high}$"):
            bound.parse(str(number))


@pytest.mark.parametrize("bound", [b for b in BOUNDS if b.kind is float], ids=lambda b: b.name)
@given(number=st.floats())
@example(number=1e308).via("the issue's --duration")
@example(number=-0.0)
def test_numbers_parse_when_finite_and_inside_the_range(bound: Bound, number: float) -> None:
    inside = math.isfinite(number) and (number > bound.low if bound.low_open else number >= bound.low) \
        and number <= bound.high
    if inside:
        value = bound.parse(repr(number))
        assert value == number and math.copysign(1, value) == 1  # -0.0 comes back as 0.0
    else:
        with pytest.raises(ChainError, match=rf"^{re.escape(bound.name)} \S+ (is out of range|is not a finite number)"):
            bound.parse(repr(number))


@given(text=st.one_of(hostile_numbers(), st.text()))
@example(text="٢٥٦").via("Arabic-Indic digits: int() takes them")
@example(text="２５６").via("full-width digits: int() takes them")
@example(text="²⁵⁶").via("superscripts: not even digits to int()")
@example(text="1_000").via("int() takes underscores")
def test_any_text_is_a_number_in_range_or_one_line_naming_the_option(text: str) -> None:
    for bound in BOUNDS:
        try:
            value = bound.parse(text)
        except ChainError as error:
            message = str(error)
            assert message.startswith(f"{bound.name} ") and "\n" not in message and "give " in message
        else:
            assert text.strip().isascii() and "_" not in text and math.isfinite(value)
            assert bound.low <= value <= bound.high


@given(digits=NON_ASCII_DIGITS)
def test_digits_that_are_not_ascii_are_refused_as_such(digits: str) -> None:
    for bound in BOUNDS:
        with pytest.raises(ChainError, match=r"is not written in ASCII digits \(0-9\)"):
            bound.parse(digits)


def test_device_and_cluster_names() -> None:
    assert [parse_device(d) for d in ("auto", "CPU", " cuda ", "cuda:1", "mps", None)] == \
        ["auto", "cpu", "cuda", "cuda:1", "mps", "auto"]
    for device in ("meta", "xla", "cuda:-1", "cuda:1000", "ｃｐｕ", "cpu:0", "", "cuda:٢"):
        with pytest.raises(ChainError, match="is not a device chain runs on; use auto, cpu, cuda, cuda:N or mps"):
            parse_device(device)
    assert [parse_cluster(c) for c in ("ray", "auto", "ray://10.0.0.1:10001", None)] == \
        ["ray", "auto", "ray://10.0.0.1:10001", None]
    for cluster in ("", "ray://host", "ray://host:port", "http://host:1", "RAY", "ray://a b:1"):
        with pytest.raises(ChainError, match="use ray .*ray://HOST:PORT"):
            parse_cluster(cluster)


def test_python_callers_meet_the_same_bounds() -> None:
    from chain.config import ChainConfig, RunConfig

    for keywords, message in (({"batch_size": 2**63}, "--batch"), ({"crf": 64}, "--crf"),
                              ({"cluster": "ray", "shards": 0}, "--shards"), ({"cluster": "ray:/x"}, "--cluster")):
        with pytest.raises(ChainError, match=f"^{message} "):
            RunConfig("in.mp4", **keywords)
    for keywords, message in (({"duration": 1e308}, "--duration 1e+308 is out of range"), ({"size": "²⁵⁶"}, "--size"),
                              ({"max_frames": 2**64}, "--max-frames"), ({"start": math.inf}, "--start inf")):
        with pytest.raises(ChainError, match=f"^{re.escape(message)}"):
            RunConfig.of("in.mp4", "out.mp4", **keywords)
    with pytest.raises(ChainError, match="--device meta"):
        ChainConfig(device="meta")
    with pytest.raises(ChainError, match="--threads 0 is out of range"):
        ChainConfig(threads=0)


def test_training_flags_and_ui_settings_meet_the_same_bounds() -> None:
    from chain.training.options import check_flags
    from chain.ui.settings import Settings

    check_flags({"batch": 4, "lr": 2e-4, "seed": 0, "ngf": None, "size": "64x48"})
    for flags, message in (({"batch": 2**63}, "--batch"), ({"lr": math.nan}, "--lr nan is not a finite number"),
                           ({"seed": -1}, "--seed -1 is out of range"), ({"latent": 1.5}, "--latent 1.5 is not a whole")):
        with pytest.raises(ChainError, match=f"^{re.escape(message)}"):
            check_flags(flags)
    settings = Settings(source="a.mp4", batch=2.0, max_frames=3.0, device="CPU")  # the page's number boxes
    assert (settings.batch, settings.max_frames, settings.device) == (2, 3, "cpu")
    for keywords, message in (({"batch": 0}, "--batch 0"), ({"max_frames": 2.5}, "--max-frames 2.5"),
                              ({"device": "meta"}, "--device meta")):
        with pytest.raises(ChainError, match=f"^{message} "):
            Settings(source="a.mp4", **keywords)


def test_an_allocation_refused_names_the_option_to_lower() -> None:
    error = RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
                         "you tried to allocate 120000000000 bytes. Error code 12 (Cannot allocate memory)")
    assert _out_of_memory(error, ["run", "in.mp4", "--seg-opt", "size=100000", "--seg-opt", "fit=aspect"]) == \
        "out of memory (a network asked for 111.8 GiB): lower --seg-opt size=100000"
    assert _out_of_memory(MemoryError(), ["run", "in.mp4", "--batch=64", "--size", "4096"]) == \
        "out of memory: lower --batch 64 or --size 4096"
    assert _out_of_memory(MemoryError(), ["run", "in.mp4"]) == "out of memory: try a smaller --size or --batch"


def test_cuda_out_of_memory_and_devices_that_are_not_there(monkeypatch: pytest.MonkeyPatch) -> None:
    from chain.device import resolve_device
    from chain.entry import _is_out_of_memory

    error = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity "
                                   "of 79.19 GiB of which 3.12 GiB is free.")
    assert _is_out_of_memory(error) and not _is_out_of_memory(RuntimeError("shape mismatch"))
    assert _out_of_memory(error, ["run", "in.mp4", "--batch", "64"]) == \
        "out of memory (a network asked for 20.00 GiB): lower --batch 64"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ChainError, match=r"^--device cuda:1: there is 1 CUDA GPU \(cuda:0 to cuda:0\)$"):
        resolve_device("cuda:1")


def test_a_segmenter_size_no_memory_holds_is_one_line(voc_checkpoint: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's --seg-opt size=100000 asks for 112 GiB; 10**7 asks for more than a 64-bit address space
    holds (128 TiB), refused at once even where memory is overcommitted: one line naming the option, exit 4."""
    monkeypatch.chdir(tmp_path)
    clip(tmp_path)
    code, _, err = cli("run", "in.mp4", "out.mp4", "-q", "--seg", "deeplab-mnv2:voc", "--seg-weights",
                       str(voc_checkpoint), "--synth", "colorize", "--max-frames", "1", "--seg-opt", "size=10000000")
    lines = assert_ends_well(code, err)
    assert code == 4 and re.fullmatch(r"error: out of memory \(a network asked for [0-9.]+ GiB\): "
                                      r"lower --seg-opt size=10000000", lines[0]), err
    assert not (tmp_path / "out.mp4").exists()


# --- whole commands, drawn ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("options")
    clip(folder)
    return folder


def _fresh(workspace: Path, name: str) -> Path:
    """An empty folder (with the clip) for one example: nothing of an earlier one is in the way."""
    folder = Path(workspace) / f"{name}-{time.monotonic_ns()}"
    folder.mkdir()
    clip(folder)
    return folder


def _not_many_threads(text: str) -> bool:
    """--threads 900 is in range, and would start 900 threads in this process: left to the unit test."""
    return not re.fullmatch(r"\s*\+?0*([3-9]|[1-9][0-9]{1,3})\s*", text)


RUN_VALUES = {  # in range, and cheap on the 12-frame clip
    "--start": st.sampled_from(["0", "0.2", "-0", "1.5"]), "--duration": st.sampled_from(["0.1", "0.3", "5"]),
    "--max-frames": st.sampled_from(["1", "2"]), "--fps": st.sampled_from(["1", "5", "12.5", "30"]),
    "--batch": st.sampled_from(["1", "2", "3"]), "--threads": st.sampled_from(["1", "2"]),
    "--crf": st.sampled_from(["0", "23", "51", "63"]), "--size": st.sampled_from(["16", "32x24", "2x2", "64x48"]),
    "--shards": st.sampled_from(["1", "2"]), "--shard-seconds": st.sampled_from(["0.5", "2"]),
}


@st.composite
def run_options(draw: st.DrawFn) -> dict[str, str]:
    """Some of `chain run`'s numeric options, each in range or hostile."""
    chosen = draw(st.lists(st.sampled_from(sorted(RUN_VALUES)), min_size=1, max_size=4, unique=True))
    options = {}
    for name in chosen:
        hostile = hostile_numbers().filter(_not_many_threads) if name == "--threads" else hostile_numbers()
        # Three in four in range: a run with every value in range writes, and those are the slow ones.
        options[name] = draw(hostile if draw(st.integers(0, 3)) == 0 else RUN_VALUES[name])
    return options


@RUNS
@given(options=run_options())
@example(options={"--batch": "9223372036854775808"}).via("issue 24")
@example(options={"--duration": "1e308"}).via("issue 24")
@example(options={"--size": "²⁵⁶"}).via("issue 24")
@example(options={"--max-frames": "2", "--fps": "5"}).via("a run that writes")
def test_chain_run_options_end_well(workspace: Path, options: dict[str, str]) -> None:
    folder = _fresh(workspace, "run")
    args = [*RUN, *(["--max-frames", "2"] if "--max-frames" not in options else [])]
    for name, value in options.items():
        args += [name, value]
    with working_in(folder):
        code, _, err = cli(*args)
    lines = assert_ends_well(code, err)
    event("written" if code == 0 else "refused")
    if code == 0:
        assert (folder / "out.mp4").stat().st_size > 0
    else:
        assert not (folder / "out.mp4").exists()
        given_names = "|".join(re.escape(name) for name in options)
        # The line names an option given, or what it did to the run (no frames left, no cluster).
        assert re.search(rf"({given_names})|no frames|--cluster", lines[0]), lines[0]


TRAIN_VALUES = {
    "vaegan": ["--latent", "--epochs", "--batch", "--lr", "--seed", "--pixel-weight", "--start", "--duration",
               "--max-frames", "--checkpoint-every", "--max-steps", "--size"],
    "spade": ["--ngf", "--spade-hidden", "--ndf", "--epochs", "--batch", "--lr", "--seed", "--start", "--duration",
              "--max-frames", "--checkpoint-every", "--max-steps", "--size"],
}


@st.composite
def train_command(draw: st.DrawFn) -> list[str]:
    """`chain train vaegan|spade` over a missing input, with some of its numeric options drawn."""
    model = draw(st.sampled_from(sorted(TRAIN_VALUES)))
    args = ["train", model, *(["nosuch.mp4"] if model == "vaegan" else ["--data", "nosuch.mp4"]),
            "--out", "run", "-q", "--device", draw(st.sampled_from(["cpu", "auto", "meta", "cuda:7", "ｃｐｕ"]))]
    for name in draw(st.lists(st.sampled_from(TRAIN_VALUES[model]), max_size=4, unique=True)):
        args += [name, draw(st.one_of(st.sampled_from(["1", "2", "0.001", "64x48"]), hostile_numbers()))]
    return args


@RUNS
@given(args=train_command())
@example(args=["train", "vaegan", "nosuch.mp4", "--out", "run", "-q", "--latent", str(2**64)])
@example(args=["train", "spade", "--data", "nosuch.mp4", "--out", "run", "-q", "--ngf", "1e308"])
def test_chain_train_options_end_well(workspace: Path, args: list[str]) -> None:
    folder = _fresh(workspace, "train")
    with working_in(folder):
        code, _, err = cli(*args)
    lines = assert_ends_well(code, err)
    assert code != 0  # the input does not exist: an option refused, or that
    named = "|".join(re.escape(a) for a in args if a.startswith("--"))
    assert re.search(rf"nosuch|{named}", lines[0]), lines[0]
    assert not (folder / "run").exists() or not any((folder / "run").rglob("*.safetensors"))


@RUNS
@given(source=st.one_of(st.sampled_from(list(NEIGHBOURS.values())), ARGUMENT_TEXT, st.just("in.mp4")))
@example(source="in.mp4")
def test_chain_info_ends_well(workspace: Path, source: str) -> None:
    folder = _fresh(workspace, "info")
    with working_in(folder):
        code, out, err = cli("info", source)
    assert_ends_well(code, err)
    if code == 0:
        assert "64x48" in out or "fps" in out


# --- the environment ---------------------------------------------------------------------------------
@pytest.mark.parametrize("item", ENV_CASES, ids=lambda c: c.name)
def test_environment_variable_ends_well(item: EnvCase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv(item.variable, item.value.format(file=tmp_path / "a-file", folder=tmp_path))
    monkeypatch.chdir(tmp_path)
    clip(tmp_path)
    code, _, err = cli(*RUN, "--max-frames", "2")
    lines = assert_ends_well(code, err)
    if item.expect == "output":
        assert code == 0 and not lines and (tmp_path / "out.mp4").exists(), err
    else:
        assert code == 2 and re.search(item.expect, lines[0]), err
        assert not (tmp_path / "out.mp4").exists()


def test_empty_openmp_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    environ = {"OMP_NUM_THREADS": " ", "OMP_WAIT_POLICY": ""}
    check_environment(environ)  # type: ignore[arg-type]
    assert environ == {"OMP_WAIT_POLICY": "PASSIVE"}  # chain's own default; libgomp sees nothing odd
    assert weights_folder({"CHAIN_WEIGHTS": "~/w"}) == Path.home() / "w"
    assert weights_folder({"CHAIN_WEIGHTS": ""}) is None


def _process(args: list[str], env: dict[str, str], cwd: Path, **kwargs: object) -> subprocess.Popen:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "COLUMNS": "200",
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "CHAIN_WEIGHTS": os.environ.get("CHAIN_WEIGHTS", str(cwd / "weights"))}
    return subprocess.Popen([sys.executable, "-m", "chain", *args], cwd=cwd, env={**base, **env}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_openmp_variables_as_a_fresh_process_reads_them(tmp_path: Path) -> None:
    """libgomp reads OMP_* once, as torch loads, and prints its own line about a value it refuses:
    chain checks them first, and removes empty ones."""
    clip(tmp_path)
    empty = _process([*RUN, "--max-frames", "2"], {"OMP_NUM_THREADS": "", "OMP_WAIT_POLICY": " "}, tmp_path)
    _, err = empty.communicate(timeout=300)
    assert empty.returncode == 0 and err.strip() == "", err  # no "libgomp: Invalid value…"
    for variable, value in (("OMP_NUM_THREADS", "0"), ("OMP_WAIT_POLICY", "sometimes")):
        refused = _process([*RUN, "--max-frames", "2"], {variable: value}, tmp_path)
        _, err = refused.communicate(timeout=300)
        lines = [line for line in err.splitlines() if line.strip()]
        assert refused.returncode == 2 and len(lines) == 1 and f"{variable}={value}" in lines[0], err


# --- Ray --------------------------------------------------------------------------------------------
def test_ray_client_missing_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[cluster]'")
    import importlib.util

    from chain.cluster import run as cluster_run

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "grpc" else find_spec(name, *a))
    with pytest.raises(ChainError, match=r"--cluster ray://127.0.0.1:1 connects through Ray Client, which is not "
                                         r"installed: pip install 'chain\[cluster\]'"):
        cluster_run._ray("ray://127.0.0.1:1")


@pytest.mark.slow
def test_a_ray_cluster_out_of_reach_is_one_line(tmp_path: Path) -> None:
    """Ray Client tries for 30 s, then warns in two lines of its own beside the error: one line here."""
    pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[cluster]'")
    pytest.importorskip("grpc", reason="Ray Client is not installed: pip install -e '.[cluster]'")
    clip(tmp_path)
    process = _process([*RUN, "--max-frames", "2", "--cluster", "ray://127.0.0.1:1"], {}, tmp_path)
    _, err = process.communicate(timeout=300)
    lines = [line for line in err.splitlines() if line.strip()]
    assert process.returncode == 2 and len(lines) == 1, err
    assert lines[0].startswith("error: cannot reach the Ray cluster ray://127.0.0.1:1"), err


def _session_processes(session: int) -> list[int]:
    """Processes still in ``session`` (Linux /proc; the session id is the 6th field of stat)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == session and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def _session_runs(session: int, name: str) -> bool:
    """Whether a process of ``session`` runs a program whose command line holds ``name``."""
    for pid in _session_processes(session):
        with contextlib.suppress(OSError):
            if name in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                return True
    return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize("started, after", [("gcs_server", 0.0), ("raylet", 3.0)], ids=["in-ray-init", "in-the-tasks"])
def test_ctrl_c_while_ray_starts_exits_130_cleanly(tmp_path: Path, started: str, after: float) -> None:
    """Ctrl-C (SIGINT to the whole foreground group, Ray's processes too) as Ray's GCS starts, or 3 s after
    its raylet did (before the fix, 3 of 4 runs there died of SIGSEGV after the 130 line): the 130 line,
    exit 130, no crash, and nothing of Ray left behind."""
    pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[cluster]'")
    clip(tmp_path)
    process = _process([*RUN, "--max-frames", "4", "--cluster", "ray", "--shards", "2"], {}, tmp_path,
                       start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not _session_runs(process.pid, started) and process.poll() is None:
            assert time.monotonic() < deadline, "Ray did not start"
            time.sleep(0.02)
        time.sleep(after)
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=120)
        assert process.returncode == 130, f"exit {process.returncode}: {err}"
        assert "Segmentation" not in err and "Fatal Python error" not in err and "Traceback" not in err, err
        assert err.strip().splitlines()[-1].startswith("interrupted; no partial output was left"), err
        deadline = time.monotonic() + 60
        while _session_processes(process.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _session_processes(process.pid), "Ray's processes outlived the run"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]
    finally:
        for pid in _session_processes(process.pid):  # only this test's own processes
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_quiet_hides_rays_log_lines(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[cluster]'")
    clip(tmp_path)
    process = _process([*RUN, "--max-frames", "4", "--cluster", "ray", "--shards", "2"], {}, tmp_path)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0 and err.strip() == "", err  # Ray's "Token authentication …" was here
    assert (tmp_path / "out.mp4").stat().st_size > 0
