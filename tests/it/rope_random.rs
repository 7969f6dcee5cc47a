//! Randomized differential test: random incremental edits applied to a `Document` (rope,
//! position conversion, clamping) and to a naive `String` model must agree after every edit,
//! in each position encoding. The seed is printed on failure; rerun with KILN_TEST_SEED.

use kiln::text::{ContentChange, Document, Position, PositionEncoding, Range, Unclipped};

use crate::support::Rng;

const EDITS_PER_ENCODING: usize = 10_000;
const PIECES: [&str; 14] = [
    "a",
    "b",
    "xyz",
    " ",
    "é",
    "日本",
    "😀",
    "e\u{301}",
    "\u{10348}",
    "\n",
    "\r\n",
    "\r",
    "\t",
    "ß",
];

/// The LSP meaning of a position, computed the slow and obvious way.
fn naive_offset(text: &str, pos: Position, enc: PositionEncoding) -> usize {
    // Line starts, with \r\n, \n and \r as breaks.
    let bytes = text.as_bytes();
    let mut starts = vec![0];
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                starts.push(i + 2);
                i += 2;
            }
            b'\r' | b'\n' => {
                starts.push(i + 1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    let line = pos.line as usize;
    if line >= starts.len() {
        return text.len();
    }
    let start = starts[line];
    let mut end = if line + 1 < starts.len() {
        starts[line + 1]
    } else {
        text.len()
    };
    let rest = &text[start..end];
    if rest.ends_with("\r\n") {
        end -= 2;
    } else if rest.ends_with('\n') || rest.ends_with('\r') {
        end -= 1;
    }
    let mut units = 0usize;
    for (offset, ch) in text[start..end].char_indices() {
        let len = enc.len_of(ch);
        if units + len > pos.character as usize {
            return start + offset;
        }
        units += len;
    }
    end
}

fn random_text(rng: &mut Rng, max_pieces: usize) -> String {
    (0..rng.below(max_pieces + 1))
        .map(|_| *rng.pick(&PIECES))
        .collect()
}

fn random_position(rng: &mut Rng, text: &str) -> Position {
    let n_lines = text.matches('\n').count() + text.matches('\r').count() + 1;
    let line = rng.below(n_lines + 2) as u32;
    let character = rng.below(12) as u32;
    Position::new(line, character)
}

fn run(enc: PositionEncoding, rng: &mut Rng, initial_pieces: usize, n_edits: usize) {
    let mut model = random_text(rng, initial_pieces);
    let mut doc = Document::new("untitled:random".into(), 0, "plaintext".into(), &model);
    for edit_idx in 0..n_edits {
        let (mut start, mut end) = (random_position(rng, &model), random_position(rng, &model));
        if end < start {
            std::mem::swap(&mut start, &mut end);
        }
        let insert = if rng.chance(10) && model.len() > 200 {
            String::new()
        } else {
            random_text(rng, 3)
        };
        let change = if rng.chance(1) {
            model = insert.clone();
            ContentChange {
                range: None,
                text: insert,
            }
        } else {
            let (s, e) = (
                naive_offset(&model, start, enc),
                naive_offset(&model, end, enc),
            );
            let e = e.max(s);
            model.replace_range(s..e, &insert);
            ContentChange {
                range: Some(Unclipped(Range::new(start, end))),
                text: insert,
            }
        };
        doc.apply_changes(edit_idx as i32 + 1, std::slice::from_ref(&change), enc)
            .unwrap_or_else(|err| panic!("seed {}: edit {edit_idx} refused: {err}", rng.seed()));
        assert_eq!(
            doc.rope().to_string(),
            model,
            "rope and model disagree after edit {edit_idx} ({change:?}) in {enc:?}; rerun with KILN_TEST_SEED={}",
            rng.seed()
        );
    }
}

#[test]
fn random_edits_agree_with_a_naive_model_in_every_encoding() {
    let mut rng = Rng::from_env();
    let seed = rng.seed();
    eprintln!("rope_random seed: {seed}");
    for enc in PositionEncoding::ALL {
        run(enc, &mut rng, 30, EDITS_PER_ENCODING);
    }
}

#[test]
fn random_edits_in_a_document_spanning_many_rope_chunks() {
    // Tens of kilobytes: edits land inside chunks, at chunk boundaries and on lines that
    // span chunks, exercising both conversion paths.
    let mut rng = Rng::from_env();
    eprintln!("rope_random (large) seed: {}", rng.seed());
    for enc in PositionEncoding::ALL {
        run(enc, &mut rng, 12_000, 1_500);
    }
}
