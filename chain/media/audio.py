"""Carry an input's sound into an output video, packet by packet as the video advances.

The input is opened a second time, for its audio alone, so audio can be interleaved with
video as frames are encoded: the muxer then never buffers a whole film's worth of packets.
Packets are copied when the output container accepts the codec, and re-encoded (AAC, or
Opus for WebM) otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from chain.errors import ChainError
from chain.media.video import media_origin, open_container

if TYPE_CHECKING:
    import av

# The codec used when the input's cannot be copied, by output container format.
_REENCODE_CODEC = {"webm": "libopus", "ogg": "libopus"}
_DEFAULT_REENCODE = "aac"


class AudioPassthrough:
    """The audio of ``path`` between ``start`` and ``start + duration`` seconds.

    Call `attach` once the output container exists, `pump` after each video frame with
    that frame's time, and `finish` before closing the output.
    """

    def __init__(self, path: Path, *, start: float = 0.0, duration: float | None = None) -> None:
        self._input = open_container(path)
        self._in_stream = self._input.streams.audio[0]
        # Times are counted from the input's origin, as the video's are (MPEG-TS starts at ~1.4 s).
        self._start = start + media_origin(self._input)
        self._end = self._start + duration if duration is not None else None
        self._seek = start > 0
        self._packets = None
        self._out_stream = None
        self._encoder_stream = None
        self._resampler: av.AudioResampler | None = None
        self._pending: av.Packet | None = None
        self.copied = False

    @property
    def codec(self) -> str:
        return self._in_stream.codec_context.name

    def attach(self, output: av.container.OutputContainer) -> None:
        """Add the audio stream to ``output``: a copy if it fits the container, else re-encoded."""
        import av  # FFmpeg is loaded on first use, so importing chain stays light
        if self.codec in output.supported_codecs:
            self._out_stream = output.add_stream_from_template(self._in_stream)
            self.copied = True
        else:
            codec = _REENCODE_CODEC.get(output.format.name.split(",")[0], _DEFAULT_REENCODE)
            context = self._in_stream.codec_context
            rate = 48000 if codec == "libopus" else context.sample_rate
            self._out_stream = output.add_stream(codec, rate=rate, layout=context.layout.name)
            self._resampler = av.AudioResampler(format=self._out_stream.codec_context.format.name,
                                                layout=context.layout.name, rate=rate)
        if self._seek:
            self._input.seek(int(self._start / self._in_stream.time_base), stream=self._in_stream, backward=True)
        self._packets = self._input.demux(self._in_stream)

    def pump(self, output: av.container.OutputContainer, until: float | None) -> None:
        """Write the audio up to ``until`` seconds of output time (None: all that is left)."""
        if self._packets is None:
            return
        while True:
            packet = self._pending or next(self._packets, None)
            self._pending = None
            if packet is None:
                self._packets = None
                return
            if packet.pts is None or packet.size == 0:
                continue
            time = float(packet.pts * packet.time_base) - self._start
            if self._end is not None and time + self._start >= self._end:
                self._packets = None
                return
            if time < 0:
                continue
            if until is not None and time > until:
                self._pending = packet  # belongs after the next video frame
                return
            self._write(output, packet, time)

    def _write(self, output: av.container.OutputContainer, packet: av.Packet, time: float) -> None:
        if self.copied:
            offset = int(round(self._start / packet.time_base))
            packet.pts -= offset
            if packet.dts is not None:
                packet.dts -= offset
            packet.stream = self._out_stream
            output.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None  # let the resampler/encoder count samples from zero
            for converted in self._resampler.resample(frame):
                output.mux(self._out_stream.encode(converted))

    def finish(self, output: av.container.OutputContainer) -> None:
        """Write what is left of the audio and flush the encoder."""
        self.pump(output, None)
        if not self.copied and self._out_stream is not None:
            for converted in self._resampler.resample(None):
                output.mux(self._out_stream.encode(converted))
            output.mux(self._out_stream.encode(None))

    def close(self) -> None:
        self._input.close()


def open_audio(path: Path, *, start: float, duration: float | None) -> AudioPassthrough | None:
    """The audio of a video file, or None when it has none."""
    import av  # FFmpeg is loaded on first use, so importing chain stays light
    try:
        with open_container(path) as probe:
            if not probe.streams.audio:
                return None
    except av.FFmpegError as error:
        raise ChainError(f"cannot read audio of {path}: {error}") from None
    return AudioPassthrough(path, start=start, duration=duration)

