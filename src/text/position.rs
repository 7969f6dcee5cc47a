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
    if let Some((line_start, content)) = line_in_one_chunk(rope, line) {
        return CharIdx(line_start + char_in_str(content, pos.character as usize, enc));
    }
    let (line_start, slice) = line_slice(rope, line);
    CharIdx(line_start + char_in_line(&slice, pos.character as usize, enc))
}

/// Converts a range from outside into char indices; both ends on one line share the work.
pub fn to_char_range(
    rope: &Rope,
    range: Unclipped<Range>,
    enc: PositionEncoding,
) -> (CharIdx, CharIdx) {
    let Unclipped(range) = range;
    let line = range.start.line as usize;
    if range.start.line == range.end.line
        && line < rope.len_lines()
        && let Some((line_start, content)) = line_in_one_chunk(rope, line)
    {
        let start = char_in_str(content, range.start.character as usize, enc);
        let end = if range.end.character == range.start.character {
            start
        } else {
            char_in_str(content, range.end.character as usize, enc).max(start)
        };
        return (CharIdx(line_start + start), CharIdx(line_start + end));
    }
    let start = to_char_idx(rope, Unclipped(range.start), enc);
    let end = to_char_idx(rope, Unclipped(range.end), enc);
    (start, end.max(start))
}

/// The fast path for the common case of a line that lies inside one chunk of the rope: one
/// tree walk, then plain string scanning. Returns the char index where the line starts and
/// the line's content without its break, or `None` when the line spans chunks.
fn line_in_one_chunk(rope: &Rope, line: usize) -> Option<(usize, &str)> {
    let (chunk, chunk_byte, chunk_char, chunk_line) = rope.chunk_at_line_break(line);
    let bytes = chunk.as_bytes();
    let is_break = |b: &u8| *b == b'\n' || *b == b'\r';
    let mut at = 0;
    for _ in chunk_line..line {
        let brk = at + bytes[at..].iter().position(is_break)?;
        // Ropey never splits a `\r\n` pair across chunks.
        at = if bytes[brk] == b'\r' && bytes.get(brk + 1) == Some(&b'\n') {
            brk + 2
        } else {
            brk + 1
        };
    }
    let rest = &chunk[at..];
    let content = match rest.bytes().position(|b| is_break(&b)) {
        Some(end) => &rest[..end],
        // The line goes on in the next chunk, unless this is the last one.
        None if chunk_byte + chunk.len() == rope.len_bytes() => rest,
        None => return None,
    };
    Some((chunk_char + chunk[..at].chars().count(), content))
}

/// The char offset in `content` (a line without its break) of `character` units of `enc`,
/// clamped to the end and rounded down inside multi-unit chars.
fn char_in_str(content: &str, character: usize, enc: PositionEncoding) -> usize {
    match enc {
        PositionEncoding::Utf32 => content.chars().take(character).count(),
        PositionEncoding::Utf8 => {
            let mut target = character.min(content.len());
            while !content.is_char_boundary(target) {
                target -= 1;
            }
            content[..target].chars().count()
        }
        PositionEncoding::Utf16 => {
            let mut units = 0;
            for (idx, ch) in content.chars().enumerate() {
                units += ch.len_utf16();
                if units > character {
                    return idx;
                }
            }
            content.chars().count()
        }
    }
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
    fn chunk_fast_path_agrees_with_the_slice_path_across_chunks() {
        // Lines of varied lengths, every kind of break, multi-unit chars; many chunks.
        let pieces = ["a", "é", "日本", "😀", "\n", "\r\n", "\r", "xyz ", "\t"];
        let mut text = String::new();
        let mut k = 7usize;
        while text.len() < 40_000 {
            k = k.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            text.push_str(pieces[(k >> 16) % pieces.len()]);
        }
        let rope = Rope::from_str(&text);
        assert!(rope.chunks().count() > 20);
        for line in 0..rope.len_lines() {
            let (start, slice) = line_slice(&rope, line);
            for enc in PositionEncoding::ALL {
                for character in [0, 1, 2, 3, 5, 8, 40, 1000] {
                    let slow = start + char_in_line(&slice, character, enc);
                    if let Some((fast_start, content)) = line_in_one_chunk(&rope, line) {
                        assert_eq!(fast_start, start, "line {line}");
                        assert_eq!(
                            fast_start + char_in_str(content, character, enc),
                            slow,
                            "line {line} {enc:?} {character}"
                        );
                    }
                    let pos = Unclipped(Position::new(line as u32, character as u32));
                    assert_eq!(to_char_idx(&rope, pos, enc).0, slow);
                }
            }
        }
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
