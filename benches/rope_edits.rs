//! Applying single-character edits at random positions to a 5 MB document through the
//! UTF-16 conversion path (what VS Code sends), against the same edits applied to a
//! `String` through the same kind of position conversion.
//!
//! Run: `cargo bench --bench rope_edits`. The README's performance table quotes it.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use kiln::text::{ContentChange, Document, Position, PositionEncoding, Range, Unclipped};

const DOC_BYTES: usize = 5 << 20;
const N_EDITS: usize = 100_000;
/// The `String` baseline is O(n) per edit; it runs on a prefix of the same edit sequence.
const N_STRING_EDITS: usize = 500;

struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn document_text() -> String {
    let lines = [
        "    let value = compute(input, &config)?; // a typical line of code",
        "    // 日本語のコメント — with multi-byte text",
        "    println!(\"emoji 😀 and accents é à ü\");",
        "}",
        "",
    ];
    let mut text = String::with_capacity(DOC_BYTES + 100);
    let mut i = 0;
    while text.len() < DOC_BYTES {
        text.push_str(lines[i % lines.len()]);
        text.push('\n');
        i += 1;
    }
    text
}

/// Single-character inserts and deletes at random (line, UTF-16 column) positions.
fn edits(n_lines: usize) -> Vec<ContentChange> {
    let mut rng = Lcg(42);
    (0..N_EDITS)
        .map(|_| {
            let line = rng.below(n_lines) as u32;
            let character = rng.below(70) as u32;
            let start = Position::new(line, character);
            if rng.below(4) == 0 {
                let end = Position::new(line, character + 1);
                ContentChange {
                    range: Some(Unclipped(Range::new(start, end))),
                    text: String::new(),
                }
            } else {
                ContentChange {
                    range: Some(Unclipped(Range::new(start, start))),
                    text: "x".into(),
                }
            }
        })
        .collect()
}

/// The baseline: the same clamping conversion, done by scanning a `String`.
fn string_offset(text: &str, pos: Position) -> usize {
    let line_start = if pos.line == 0 {
        0
    } else {
        match text.match_indices('\n').nth(pos.line as usize - 1) {
            Some((i, _)) => i + 1,
            None => return text.len(),
        }
    };
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let mut units = 0;
    for (offset, ch) in text[line_start..line_end].char_indices() {
        if units + ch.len_utf16() > pos.character as usize {
            return line_start + offset;
        }
        units += ch.len_utf16();
    }
    line_end
}

fn apply_to_string(text: &mut String, change: &ContentChange) {
    let Some(Unclipped(range)) = change.range else {
        return;
    };
    let start = string_offset(text, range.start);
    let end = string_offset(text, range.end).max(start);
    text.replace_range(start..end, &change.text);
}

fn bench(c: &mut Criterion) {
    let text = document_text();
    let n_lines = text.lines().count();
    let edits = edits(n_lines);
    let doc = Document::new("file:///bench.rs".into(), 0, "rust".into(), &text);

    let mut group = c.benchmark_group("5MB document, single-char edits, UTF-16 positions");
    group.sample_size(10);
    group.throughput(Throughput::Elements(N_EDITS as u64));
    group.bench_function("rope (kiln Document)", |b| {
        b.iter_batched(
            || doc.clone(),
            |mut doc| {
                for (i, edit) in edits.iter().enumerate() {
                    doc.apply_changes(
                        i as i32 + 1,
                        std::slice::from_ref(edit),
                        PositionEncoding::Utf16,
                    )
                    .unwrap();
                }
                black_box(doc)
            },
            BatchSize::LargeInput,
        )
    });
    group.throughput(Throughput::Elements(N_STRING_EDITS as u64));
    group.bench_function("String baseline", |b| {
        b.iter_batched(
            || text.clone(),
            |mut s| {
                for edit in &edits[..N_STRING_EDITS] {
                    apply_to_string(&mut s, edit);
                }
                black_box(s)
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
