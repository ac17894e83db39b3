"""Reading and writing frames: video files through PyAV, image folders, single and animated images
(every image through `chain.media.images`, the one image reader)."""

from chain.media.audio import AudioPassthrough, open_audio
from chain.media.images import probe_image, read_image
from chain.media.inputs import open_source
from chain.media.sink import FrameSink, ImageFolderSink, check_preset, open_sink, output_kind, save_png
from chain.media.sizes import Size, parse_size, resolve_size
from chain.media.source import Frame, FrameSource, SourceInfo, Trim

__all__ = [
    "AudioPassthrough", "Frame", "FrameSink", "FrameSource", "ImageFolderSink", "Size", "SourceInfo", "Trim",
    "check_preset", "open_audio", "open_sink", "open_source", "output_kind", "parse_size", "probe_image", "read_image",
    "resolve_size", "save_png",
]
