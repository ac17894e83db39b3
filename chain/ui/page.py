"""The Gradio page: controls on the left, the frame through the chain on the right, the run below.

Every handler is a thin call into `chain.ui.preview`, `chain.ui.runner` and `chain.ui.settings`;
failures become the CLI's one-line message in the page, never a traceback.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterator
from pathlib import Path

import gradio as gr

from chain.errors import ChainError, error_line
from chain.labels import get_label_space
from chain.options import Declared
from chain.ui.menu import missing_text, options_hint, stage_choices
from chain.ui.preview import FramePreview, Previewer, read_info
from chain.ui.runner import Runner, RunState
from chain.ui.settings import Settings, output_paths, page_options, split_list

POLL_SECONDS = 0.4  # how often a running job's progress is sent to the page
DEFAULT_SEG, DEFAULT_SYNTH = Settings.seg, Settings.synth
CSS = """
#message { min-height: 1.6em; font-family: monospace; }
#message .error { color: #c0392b; }
#run-progress progress { width: 100%; height: 1.2em; }
"""


def _message(text: str, *, error: bool = False) -> str:
    escaped = html.escape(" ".join(text.split()))
    return f'<span class="error">error: {escaped}</span>' if error else f"<span>{escaped}</span>"


def _progress_html(state: RunState) -> str:
    """A bar with frames done, frames/s and the time left, and the run's last message."""
    parts = [f'<div data-status="{state.status}" data-done="{state.done}" data-total="{state.total or ""}">']
    if state.total:
        parts.append(f'<progress max="{state.total}" value="{state.done}"></progress>')
    numbers = [f"{state.done}/{state.total or '?'} frames"] if state.status != "idle" else []
    if state.frames_per_second:
        numbers.append(f"{state.frames_per_second:.2f} frames/s")
    if state.eta_seconds is not None and state.active:
        numbers.append(f"ETA {state.eta_seconds:.0f} s")
    line = " · ".join(numbers)
    if state.message:
        line = f"{line} — {state.message}" if line else state.message
    error = state.status == "failed"
    parts.append(f'<div class="status">{_message(line, error=error) if line else ""}</div></div>')
    return "".join(parts)


def _stage_menu(kind: str, default: str) -> gr.Dropdown:
    usable = [choice.text for choice in stage_choices(kind) if choice.usable]
    choices = usable + (["none"] if kind == "synthesizer" else [])
    value = default if default in usable else (usable[0] if usable else None)
    return gr.Dropdown(choices, value=value, allow_custom_value=True, label=kind,
                       info="usable here; type NAME:VARIANT for others",
                       elem_id="seg-menu" if kind == "segmenter" else "synth-menu")


def _option_control(declared: Declared) -> gr.Checkbox | gr.Textbox:
    """A control for a run option the page has none of its own for (`chain.ui.settings.page_options`):
    a checkbox for a flag, else a text box (its text is parsed as on the command line), labelled with
    the option's help."""
    elem_id = declared.flag.removeprefix("--")
    if declared.option.type is bool:
        return gr.Checkbox(False, label=declared.option.help, elem_id=elem_id)
    return gr.Textbox(label=declared.option.help, info=declared.flag, elem_id=elem_id)


def build_page(out_dir: Path, source: str | None = None) -> gr.Blocks:
    """The app; runs write into ``out_dir``."""
    previewer, runner = Previewer(), Runner()
    picture = dict(format="png", interactive=False, height=300)  # PNG: label colours must stay exact

    with gr.Blocks(title="chain ui", analytics_enabled=False) as page:
        gr.Markdown("## chain — segment, remap, synthesize\nTry swaps on one frame, then run the whole video.")
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                source_box = gr.Textbox(source or "", label="video (a path on this computer)", elem_id="source")
                # Tall enough for gradio's "Drop File Here - or - Click to Upload" (90 px cut its last line).
                upload = gr.File(label="…or upload one", file_types=["video", "image"], elem_id="upload", height=150)
                video_info = gr.Markdown(elem_id="video-info")
                frame = gr.Slider(0, 1, value=0, step=1, label="frame", elem_id="frame")
                seg = _stage_menu("segmenter", DEFAULT_SEG)
                synth = _stage_menu("synthesizer", DEFAULT_SYNTH)
                with gr.Accordion("stages that cannot run here, and why", open=False):
                    gr.Markdown("**segmenters**\n\n" + missing_text("segmenter") + "\n\n**synthesizers**\n\n"
                                + missing_text("synthesizer"), elem_id="missing-stages")
                remap = gr.Textbox(label="remap (SRC=DST, comma-separated; *=CLASS for the rest)", elem_id="remap")
                with gr.Accordion("options", open=False, elem_id="options"):
                    seg_opt = gr.Textbox(label="segmenter options", info=options_hint("segmenter", seg.value),
                                         elem_id="seg-opt")
                    synth_opt = gr.Textbox(label="synthesizer options", info=options_hint("synthesizer", synth.value),
                                           elem_id="synth-opt")
                    seg_weights = gr.Textbox(label="segmenter weights (file or folder; empty: default)")
                    synth_weights = gr.Textbox(label="synthesizer weights (file or folder; empty: default)")
                    background = gr.Textbox(label="background becomes (class in the synthesizer's space)",
                                            elem_id="background")
                    smooth = gr.Textbox(label="temporal smoothing of runs (ema:ALPHA, e.g. ema:0.6)", elem_id="smooth")
                    size = gr.Textbox(label="working size (WxH or short side; empty: the video's)", elem_id="size")
                    max_frames = gr.Number(None, label="run at most this many frames (empty: all)", precision=0)
                    batch = gr.Number(1, label="frames per network call", precision=0, minimum=1)
                    device = gr.Dropdown(["auto", "cpu", "cuda"], value="auto", label="device")
                    # Every other run option declared for the page, a control made from its declaration.
                    offered = page_options()
                    more = [_option_control(declared) for declared in offered]
                preview_button = gr.Button("Preview frame", elem_id="preview-button")
            with gr.Column(scale=3):
                message = gr.HTML(elem_id="message")
                with gr.Row():
                    input_image = gr.Image(label="input", elem_id="input-image", **picture)
                    painting = gr.Image(label="painting", elem_id="painting", **picture)
                # One label view a row: a frame and its legend side by side are wide, and at half the
                # column's width the legend's lines were too small to read.
                masks = gr.Image(label="segmenter labels", elem_id="masks", **picture)
                labels = gr.Image(label="remapped labels, synthesizer's space", elem_id="target-labels", **picture)
                classes = gr.Radio([], label="classes found (synthesizer's space): click one to remap it",
                                   elem_id="classes")
                with gr.Row():
                    rule_from = gr.Textbox(label="swap", elem_id="rule-from", scale=2)
                    rule_to = gr.Dropdown([], label="for", allow_custom_value=True, elem_id="rule-to", scale=2)
                    add_rule = gr.Button("Add rule", elem_id="add-rule", scale=1)
        gr.Markdown("### Run on the whole video")
        with gr.Row():
            run_button = gr.Button("Run on the whole video", variant="primary", elem_id="run-button")
            cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel-button")
        progress = gr.HTML(_progress_html(RunState()), elem_id="run-progress")
        command = gr.Textbox(label="the same run from a shell", interactive=False, buttons=["copy"],
                             elem_id="command")
        with gr.Row():
            result_video = gr.Video(label="result", interactive=False, height=300, elem_id="result-video")
            compare_video = gr.Video(label="input | labels | painting", interactive=False, height=300,
                                     elem_id="compare-video")
        downloads = gr.File(label="outputs", file_count="multiple", interactive=False, elem_id="downloads")
        summary = gr.JSON(label="summary", elem_id="summary")

        controls = [source_box, seg, synth, seg_opt, synth_opt, remap, seg_weights, synth_weights, background, smooth,
                    size, max_frames, batch, device, *more]

        def settings_of(source_text, seg_name, synth_name, seg_text, synth_text, remap_text, seg_w, synth_w,
                        background_name, smooth_text, size_text, most, batch_size, device_name, *more_values) -> Settings:
            return Settings(source=(source_text or "").strip(), seg=(seg_name or "none").strip(),
                            synth=(synth_name or "none").strip(), seg_weights=(seg_w or "").strip() or None,
                            synth_weights=(synth_w or "").strip() or None, seg_options=split_list(seg_text),
                            synth_options=split_list(synth_text), remap=split_list(remap_text),
                            background=(background_name or "").strip() or None,
                            smooth=(smooth_text or "").strip() or None, size=(size_text or "").strip() or None,
                            max_frames=int(most) if most else None, batch=int(batch_size or 1),
                            device=device_name or "auto",
                            more=tuple((declared.keyword, value) for declared, value in zip(offered, more_values)
                                       if value not in (None, "", False)))

        shown = gr.State(())  # per browser tab: the frame and segmenter its input and masks pictures show
        preview_outputs = [input_image, painting, masks, labels, classes, rule_to, message, command, shown]

        def show(result: FramePreview, settings: Settings, on_page: tuple) -> list:
            target = get_label_space(result.target_space) if result.target_space else None
            what = "segmented" if result.segmented else "segmentation cached"
            ms = ", ".join(f"{name} {1000 * s:.0f} ms" for name, s in result.seconds.items())
            same = result.key == on_page  # a remap: the input and masks on the page stay, not sent again
            return [gr.update() if same else result.frame, result.painting, gr.update() if same else result.masks,
                    result.labels,
                    gr.Radio(choices=[(f"{name} {100 * share:.1f} %", name) for name, share in result.classes],
                             value=None),
                    gr.Dropdown(choices=list(target.names) if target else []),
                    _message(f"frame {result.index}: {what}; {ms}"),
                    settings.command_line(output_paths(settings.source, out_dir)), result.key]

        def failed(error: BaseException, *, clear: bool = True) -> list:
            """The error line; with ``clear``, the pictures made from other settings go, so that a refused
            remap cannot look applied (the input frame stays; the next preview sends it again)."""
            if not clear:
                return [gr.update()] * 6 + [_message(error_line(error), error=True), gr.update(), gr.update()]
            return [gr.update(), None, None, None, gr.Radio(choices=[], value=None), gr.update(),
                    _message(error_line(error), error=True), gr.update(), ()]

        def attempt(on_page, index, values) -> tuple[list, bool]:
            try:
                settings = settings_of(*values)
                return show(previewer.preview(settings, int(index or 0)), settings, on_page), True
            except Exception as error:  # noqa: BLE001 — one line in the page, never a traceback
                return failed(error), False

        def preview(on_page, index, *values) -> list:
            return attempt(on_page, index, values)[0]

        def open_video(source_text, size_text) -> list:
            try:
                path = (source_text or "").strip()
                info = read_info(path, (size_text or "").strip() or None)
            except Exception as error:  # noqa: BLE001
                return [gr.update(), gr.update(), _message(error_line(error), error=True)]
            frames = info.frame_count or 1
            text = (f"`{Path(path).name}`: {info.width}x{info.height}, {float(info.fps):.3f} fps, "
                    f"{info.frame_count if info.frame_count is not None else 'unknown'} frames, "
                    f"audio: {info.audio_codec or 'none'}")
            return [text, gr.Slider(0, max(frames - 1, 0), value=0, step=1), _message(f"opened {path}")]

        def uploaded(file: str | None) -> str:
            return file or gr.update()

        def add(rule_src, rule_dst, on_page, index, *values) -> list:
            values = list(values)
            rule = f"{(rule_src or '').strip()}={(rule_dst or '').strip()}"
            if rule.startswith("=") or rule.endswith("="):
                # Nothing was tried: the preview on the page is still what the settings make.
                return [gr.update()] + failed(ChainError("choose a class to swap and what it becomes"), clear=False)
            old = values[5] or ""
            values[5] = f"{old.rstrip().rstrip(',')}, {rule}" if old.strip() else rule
            result, ok = attempt(on_page, index, values)  # an unknown class is refused, with the CLI's suggestions
            return [values[5] if ok else gr.update()] + result

        opened = dict(fn=open_video, inputs=[source_box, size], outputs=[video_info, frame, message])
        # always_last: a scrub or an edit made while a preview is being made is previewed next, not dropped
        then_preview = dict(fn=preview, inputs=[shown, frame, *controls], outputs=preview_outputs,
                            trigger_mode="always_last")
        source_box.submit(**opened).success(**then_preview)
        upload.upload(uploaded, upload, source_box).success(**opened).success(**then_preview)
        for trigger in (frame.release, seg.change, synth.change, remap.submit, remap.blur, preview_button.click,
                        seg_opt.submit, synth_opt.submit, background.submit, size.submit):
            trigger(**then_preview)
        classes.select(lambda value: value, classes, rule_from)
        seg.change(lambda name: gr.Textbox(info=options_hint("segmenter", name)), seg, seg_opt)
        synth.change(lambda name: gr.Textbox(info=options_hint("synthesizer", name)), synth, synth_opt)
        add_rule.click(add, [rule_from, rule_to, shown, frame, *controls], [remap, *preview_outputs])
        if source:
            page.load(**opened).success(**then_preview)

        def run(*values) -> Iterator[list]:
            try:
                settings = settings_of(*values)
                state = runner.start(settings, output_paths(settings.source, out_dir))
            except Exception as error:  # noqa: BLE001
                yield [_message(error_line(error), error=True), gr.update(), gr.update(), gr.update(), gr.update(),
                       gr.update()]
                return
            while state.active:
                yield [_progress_html(state), state.command, gr.update(), gr.update(), gr.update(), gr.update()]
                time.sleep(POLL_SECONDS)
                state = runner.state()
            files = list(state.outputs.values()) if state.status == "done" else None
            yield [_progress_html(state), state.command, state.outputs.get("video"), state.outputs.get("compare"),
                   files, state.summary]

        # Unlimited concurrency: a second click while a run is going reaches the runner, which refuses it.
        run_button.click(run, controls, [progress, command, result_video, compare_video, downloads, summary],
                         concurrency_limit=None)
        cancel_button.click(lambda: _progress_html(runner.cancel()), None, progress, concurrency_limit=None)
    page.runner = runner  # the launcher cancels a run left going when the server stops
    return page
