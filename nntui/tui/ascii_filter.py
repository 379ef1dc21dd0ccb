"""ASCII screens: every glyph Textual or rich draw (ellipses, tab underlines, key arrows, scrollbars, borders)
mapped to one ASCII character of the same width, so a Linux console or a non-UTF-8 locale shows no garbage."""

from __future__ import annotations

from rich.segment import Segment
from textual.color import Color
from textual.filter import LineFilter

_GROUPS = {
    "-": "─━╌╍┄┅┈┉╴╶╸╺═▔—–",
    "|": "│┃┆┇╎╏┊┋║▏▕▎▍▌▋▊▉▐",
    "+": "┌┐└┘╭╮╰╯├┤┬┴┼┏┓┗┛┣┫┳┻╋╔╗╚╝╠╣╦╩╬",
    "#": "█▇▆▅▓▒",
    "_": "▁▂▃▄",
    ".": "·…░",
    "*": "•●◆■",
    "o": "○◇□∘",
    ">": "▶▸►→",
    "<": "◀◂◄←",
    "^": "▲↑",
    "v": "▼↓✓",
    "x": "×✗",
    "~": "≈±",
    "V": "√",
    "!": "⚠",
}
_TABLE = {ord(ch): ascii_ch for ascii_ch, chars in _GROUPS.items() for ch in chars}
_TABLE[0x2800] = " "  # the empty braille cell
_TABLE.update({code: "." for code in range(0x2801, 0x2900)})
_TABLE.update({code: None for code in range(0x300, 0x370)})  # combining marks (the hat of v̂) take no cell


def to_ascii(text: str) -> str:
    if text.isascii():
        return text
    mapped = text.translate(_TABLE)
    return mapped if mapped.isascii() else "".join(ch if ch.isascii() else "?" for ch in mapped)


class AsciiOnly(LineFilter):
    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [Segment(to_ascii(text), style, control) if not control else Segment(text, style, control)
                for text, style, control in segments]
