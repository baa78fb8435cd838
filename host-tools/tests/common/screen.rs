//! Reading a guest's screen: QEMU's `screendump` (a binary PPM) turned back
//! into text with the kernel's own console font.
//!
//! Linux's framebuffer console (fbcon) draws each character cell as the
//! font's bitmap, at `(column × 8, row × 16)` with the 8×16 VGA font, in one
//! foreground colour on the background. Cutting the image into those cells
//! and looking each bitmap up in the font gives back exactly what is on the
//! screen — no OCR guesswork. The font is `lib/fonts/font_8x16.c` of the
//! pinned kernel source (the same bitmaps the kernel under test draws with).
use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};

pub const CELL_WIDTH: usize = 8;
pub const CELL_HEIGHT: usize = 16;
/// A cell whose bitmap is no printable ASCII glyph (the cursor, a line
/// drawing character).
pub const UNKNOWN: char = '\u{FFFD}';

/// A screenshot: RGB pixels, row by row.
pub struct Image {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Image {
    /// A binary PPM (`P6`, 8 bits per channel), as QEMU's `screendump` writes.
    pub fn from_ppm(bytes: &[u8]) -> Result<Image> {
        // Four whitespace-separated header fields, then one whitespace byte.
        let mut fields = Vec::new();
        let mut i = 0;
        while fields.len() < 4 {
            while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
                i += 1;
            }
            let start = i;
            while bytes.get(i).is_some_and(|b| !b.is_ascii_whitespace()) {
                i += 1;
            }
            if start == i {
                bail!("a PPM header ends after {} of its 4 fields", fields.len());
            }
            fields.push(std::str::from_utf8(&bytes[start..i])?.to_string());
        }
        i += 1;
        if fields[0] != "P6" || fields[3] != "255" {
            bail!(
                "not an 8-bit binary PPM: magic {:?}, maximum {:?}",
                fields[0],
                fields[3]
            );
        }
        let width: usize = fields[1].parse().context("PPM width")?;
        let height: usize = fields[2].parse().context("PPM height")?;
        let rgb = bytes.get(i..).unwrap_or_default().to_vec();
        if rgb.len() != width * height * 3 {
            bail!(
                "a {width}×{height} PPM with {} bytes of pixels, not {}",
                rgb.len(),
                width * height * 3
            );
        }
        Ok(Image { width, height, rgb })
    }

    pub fn load(path: &Path) -> Result<Image> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Image::from_ppm(&bytes).with_context(|| format!("{}", path.display()))
    }

    /// A pixel lit by text: fbcon draws light grey (or brighter) on black.
    fn lit(&self, x: usize, y: usize) -> bool {
        let p = &self.rgb[(y * self.width + x) * 3..][..3];
        p.iter().copied().max().unwrap_or(0) >= 0x60
    }

    /// How many pixels are not background: a blank screen has none.
    pub fn lit_pixels(&self) -> usize {
        (0..self.height)
            .flat_map(|y| (0..self.width).map(move |x| (x, y)))
            .filter(|&(x, y)| self.lit(x, y))
            .count()
    }

    /// The screen's text, one string per row of cells, trailing blanks cut.
    pub fn text(&self, font: &Font) -> Vec<String> {
        (0..self.height / CELL_HEIGHT)
            .map(|row| {
                let line: String = (0..self.width / CELL_WIDTH)
                    .map(|col| font.glyph_char(&self.cell(col, row)))
                    .collect();
                line.trim_end().to_string()
            })
            .collect()
    }

    fn cell(&self, col: usize, row: usize) -> [u8; CELL_HEIGHT] {
        let mut bits = [0u8; CELL_HEIGHT];
        for (dy, line) in bits.iter_mut().enumerate() {
            for dx in 0..CELL_WIDTH {
                if self.lit(col * CELL_WIDTH + dx, row * CELL_HEIGHT + dy) {
                    *line |= 0x80 >> dx;
                }
            }
        }
        bits
    }
}

/// An 8×16 console font: bitmap → character, for printable ASCII.
pub struct Font {
    glyphs: HashMap<[u8; CELL_HEIGHT], char>,
}

impl Font {
    /// From 256 glyphs of 16 bytes (one byte per pixel row, MSB leftmost).
    pub fn from_glyphs(data: &[u8]) -> Result<Font> {
        if data.len() != 256 * CELL_HEIGHT {
            bail!("an 8x16 font has 4096 bytes, not {}", data.len());
        }
        let mut glyphs = HashMap::new();
        for c in (0x21u8..=0x7e).rev() {
            let bitmap: [u8; CELL_HEIGHT] = data[c as usize * CELL_HEIGHT..][..CELL_HEIGHT]
                .try_into()
                .expect("16 bytes");
            glyphs.insert(bitmap, c as char);
        }
        Ok(Font { glyphs })
    }

    /// The kernel's `lib/fonts/font_8x16.c` (C source: `0x..` bytes, each
    /// with a comment that may itself mention `0x..`).
    pub fn from_kernel_source(c_source: &str) -> Result<Font> {
        let mut data = Vec::with_capacity(4096);
        for line in c_source.lines() {
            let code = line.split("/*").next().unwrap_or("");
            for token in code.split(|c: char| c == ',' || c.is_whitespace()) {
                if let Some(hex) = token.strip_prefix("0x") {
                    data.push(
                        u8::from_str_radix(hex, 16)
                            .with_context(|| format!("font_8x16.c: {token:?} is not a byte"))?,
                    );
                }
            }
        }
        Font::from_glyphs(&data)
    }

    fn glyph_char(&self, bitmap: &[u8; CELL_HEIGHT]) -> char {
        if bitmap.iter().all(|&b| b == 0) {
            return ' ';
        }
        self.glyphs.get(bitmap).copied().unwrap_or(UNKNOWN)
    }
}

/// Draws `text` in `font_data`'s glyphs, grey on black, as fbcon does.
pub fn draw(font_data: &[u8], rows: &[&str], width_cells: usize) -> Image {
    let (width, height) = (width_cells * CELL_WIDTH, rows.len() * CELL_HEIGHT);
    let mut rgb = vec![0u8; width * height * 3];
    for (row, text) in rows.iter().enumerate() {
        for (col, c) in text.bytes().enumerate() {
            for dy in 0..CELL_HEIGHT {
                let bits = font_data[c as usize * CELL_HEIGHT + dy];
                for dx in 0..CELL_WIDTH {
                    if bits & (0x80 >> dx) != 0 {
                        let at = ((row * CELL_HEIGHT + dy) * width + col * CELL_WIDTH + dx) * 3;
                        rgb[at..at + 3].copy_from_slice(&[0xaa, 0xaa, 0xaa]);
                    }
                }
            }
        }
    }
    Image { width, height, rgb }
}
