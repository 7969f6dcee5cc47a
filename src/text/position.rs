//! Positions in a rope, in the three encodings LSP knows.
//!
//! An LSP `Position` counts lines and then code units of the negotiated encoding (UTF-8
//! bytes, UTF-16 code units or UTF-32 code points, i.e. chars). Ropey indexes by char. All
//! conversion happens here, once, at the boundary: everything inside kiln works in
//! [`CharIdx`]. Positions from outside arrive as [`Unclipped`] and are clamped as the LSP
//! specification says: a character past the end of a line means the line end, a line past
//! the end of the document means the document end. A character that falls inside a
//! multi-unit character (half a surrogate pair, the middle of a UTF-8 sequence) rounds down
//! to the start of that character.
//!
//! Line breaks are `\n`, `\r\n` and `\r` (ropey's `cr_lines` feature), exactly LSP's set.

use ropey::Rope;

/// The unit an LSP `Position.character` counts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PositionEncoding {
    Utf8,
    /// The LSP default, and the only one older clients know.
    #[default]
    Utf16,
    Utf32,
}

impl PositionEncoding {
    pub const ALL: [PositionEncoding; 3] = [Self::Utf8, Self::Utf16, Self::Utf32];

    /// The name LSP uses in `positionEncoding`.
    pub fn as_lsp_str(self) -> &'static str {
        match self {
            Self::Utf8 => "utf-8",
            Self::Utf16 => "utf-16",
            Self::Utf32 => "utf-32",
        }
    }

    pub fn from_lsp_str(name: &str) -> Option<Self> {
        match name {
            "utf-8" => Some(Self::Utf8),
            "utf-16" => Some(Self::Utf16),
            "utf-32" => Some(Self::Utf32),
            _ => None,
        }
    }

    /// Picks the encoding for a session from what the client offers: UTF-8 when offered
    /// (no conversion at all for our byte-oriented tools), else UTF-16, which every client
    /// must support. UTF-32 is used only when it is the sole offer.
    pub fn negotiate(offered: &[&str]) -> Self {
        if offered.is_empty() {
            return Self::Utf16;
        }
        let has = |e: Self| offered.contains(&e.as_lsp_str());
        if has(Self::Utf8) {
            Self::Utf8
        } else if has(Self::Utf16) {
            Self::Utf16
        } else if has(Self::Utf32) {
            Self::Utf32
        } else {
            Self::Utf16
        }
    }

    /// Length of `ch` in this encoding's code units.
    pub fn len_of(self, ch: char) -> usize {
        match self {
            Self::Utf8 => ch.len_utf8(),
            Self::Utf16 => ch.len_utf16(),
            Self::Utf32 => 1,
        }
    }
}

/// A zero-based line and a zero-based offset in that line, counted in some
/// [`PositionEncoding`]'s code units. Which one is a property of the session, not the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    pub line: u32,
    pub character: u32,
}

impl Position {
    pub const fn new(line: u32, character: u32) -> Self {
        Position { line, character }
    }
}

/// A half-open range between two positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Range {
    pub start: Position,
    pub end: Position,
}

impl Range {
    pub const fn new(start: Position, end: Position) -> Self {
        Range { start, end }
    }
}

/// A value that came from outside kiln and has not been validated against a document yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unclipped<T>(pub T);

/// An index counting chars (Unicode scalar values) from the start of a rope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CharIdx(pub usize);

/// Char index of the end of `line`'s content, before its line break.
pub fn line_content_end(rope: &Rope, line: usize) -> CharIdx {
    let (start, slice) = line_slice(rope, line);
    CharIdx(start + content_len(&slice))
}

/// Number of chars in a line slice without its line break.
fn content_len(line: &ropey::RopeSlice<'_>) -> usize {
    let mut end = line.len_chars();
    if end > 0 && line.char(end - 1) == '\n' {
        end -= 1;
        if end > 0 && line.char(end - 1) == '\r' {
            end -= 1;
        }
    } else if end > 0 && line.char(end - 1) == '\r' {
        end -= 1;
    }
    end
}

/// Converts a position from outside into a char index, clamping as LSP prescribes.
pub fn to_char_idx(rope: &Rope, pos: Unclipped<Position>, enc: PositionEncoding) -> CharIdx {
    let Unclipped(pos) = pos;
    let line = pos.line as usize;
    if line >= rope.len_lines() {
        return CharIdx(rope.len_chars());
    }
    // Work inside the line's slice: for a line within one chunk this is plain string
    // scanning, far cheaper than walking the tree from the root for each conversion.
    let (line_start, slice) = line_slice(rope, line);
    CharIdx(line_start + char_in_line(&slice, pos.character as usize, enc))
}

/// The char index where `line` starts and the line's slice (break included).
fn line_slice(rope: &Rope, line: usize) -> (usize, ropey::RopeSlice<'_>) {
    let start = rope.line_to_char(line);
    let end = if line + 1 < rope.len_lines() {
        rope.line_to_char(line + 1)
    } else {
        rope.len_chars()
    };
    (start, rope.slice(start..end))
}

/// The char offset in `line` (a line slice, break included) of `character` units of `enc`,
/// clamped to the line's content and rounded down inside multi-unit chars.
fn char_in_line(line: &ropey::RopeSlice<'_>, character: usize, enc: PositionEncoding) -> usize {
    let content = content_len(line);
    match enc {
        PositionEncoding::Utf32 => character.min(content),
        PositionEncoding::Utf8 => {
            let target = character.min(line.char_to_byte(content));
            // `byte_to_char` maps a byte inside a multi-byte char to that char: rounds down.
            line.byte_to_char(target)
        }
        PositionEncoding::Utf16 => {
            let target = character.min(line.char_to_utf16_cu(content));
            let idx = line.utf16_cu_to_char(target);
            // Ropey maps the second half of a surrogate pair to the char after it; round
            // down instead, like the other encodings.
            if line.char_to_utf16_cu(idx) > target {
                idx - 1
            } else {
                idx
            }
        }
    }
}

/// Converts a range from outside into char indices; both ends on one line share the work.
pub fn to_char_range(
    rope: &Rope,
    range: Unclipped<Range>,
    enc: PositionEncoding,
) -> (CharIdx, CharIdx) {
    let Unclipped(range) = range;
    let line = range.start.line as usize;
    if range.start.line != range.end.line || line >= rope.len_lines() {
        let start = to_char_idx(rope, Unclipped(range.start), enc);
        let end = to_char_idx(rope, Unclipped(range.end), enc);
        return (start, end.max(start));
    }
    let (line_start, slice) = line_slice(rope, line);
    let start = char_in_line(&slice, range.start.character as usize, enc);
    let end = if range.end.character == range.start.character {
        start
    } else {
        char_in_line(&slice, range.end.character as usize, enc).max(start)
    };
    (CharIdx(line_start + start), CharIdx(line_start + end))
}

/// Converts a char index back into a position in `enc`. An index past the end is clamped.
pub fn to_position(rope: &Rope, idx: CharIdx, enc: PositionEncoding) -> Position {
    let idx = idx.0.min(rope.len_chars());
    let line = rope.char_to_line(idx);
    let line_start = rope.line_to_char(line);
    let character = match enc {
        PositionEncoding::Utf32 => idx - line_start,
        PositionEncoding::Utf8 => rope.char_to_byte(idx) - rope.char_to_byte(line_start),
        PositionEncoding::Utf16 => rope.char_to_utf16_cu(idx) - rope.char_to_utf16_cu(line_start),
    };
    Position::new(to_u32(line), to_u32(character))
}

/// Converts a byte offset (which must lie on a char boundary) into a position in `enc`.
pub fn byte_to_position(rope: &Rope, byte: usize, enc: PositionEncoding) -> Position {
    let byte = byte.min(rope.len_bytes());
    to_position(rope, CharIdx(rope.byte_to_char(byte)), enc)
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: u32, character: u32) -> Unclipped<Position> {
        Unclipped(Position::new(line, character))
    }

    #[test]
    fn negotiation_prefers_utf8_then_utf16() {
        assert_eq!(PositionEncoding::negotiate(&[]), PositionEncoding::Utf16);
        assert_eq!(
            PositionEncoding::negotiate(&["utf-16", "utf-8"]),
            PositionEncoding::Utf8
        );
        assert_eq!(
            PositionEncoding::negotiate(&["utf-32", "utf-16"]),
            PositionEncoding::Utf16
        );
        assert_eq!(
            PositionEncoding::negotiate(&["utf-32"]),
            PositionEncoding::Utf32
        );
        assert_eq!(
            PositionEncoding::negotiate(&["latin-1"]),
            PositionEncoding::Utf16
        );
    }

    #[test]
    fn clamps_past_line_end_and_document_end() {
        let rope = Rope::from_str("ab\r\ncd\ref\n");
        let e = PositionEncoding::Utf16;
        assert_eq!(to_char_idx(&rope, pos(0, 99), e), CharIdx(2));
        assert_eq!(to_char_idx(&rope, pos(1, 1), e), CharIdx(5));
        assert_eq!(to_char_idx(&rope, pos(1, 9), e), CharIdx(6));
        assert_eq!(to_char_idx(&rope, pos(2, 9), e), CharIdx(9));
        assert_eq!(to_char_idx(&rope, pos(3, 0), e), CharIdx(10));
        assert_eq!(to_char_idx(&rope, pos(70, 3), e), CharIdx(10));
    }

    #[test]
    fn rounds_down_inside_multi_unit_chars() {
        let rope = Rope::from_str("a😀b");
        assert_eq!(
            to_char_idx(&rope, pos(0, 2), PositionEncoding::Utf16),
            CharIdx(1)
        );
        assert_eq!(
            to_char_idx(&rope, pos(0, 3), PositionEncoding::Utf16),
            CharIdx(2)
        );
        assert_eq!(
            to_char_idx(&rope, pos(0, 3), PositionEncoding::Utf8),
            CharIdx(1)
        );
        assert_eq!(
            to_char_idx(&rope, pos(0, 5), PositionEncoding::Utf8),
            CharIdx(2)
        );
        assert_eq!(
            to_position(&rope, CharIdx(2), PositionEncoding::Utf8),
            Position::new(0, 5)
        );
        assert_eq!(
            to_position(&rope, CharIdx(2), PositionEncoding::Utf16),
            Position::new(0, 3)
        );
        assert_eq!(
            to_position(&rope, CharIdx(2), PositionEncoding::Utf32),
            Position::new(0, 2)
        );
    }
}
