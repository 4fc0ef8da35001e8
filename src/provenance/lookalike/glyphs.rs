//! Characters as a reader sees them: the skeleton of a name (look-alike letters from other
//! scripts, digits and ASCII confusables folded onto one prototype).

use super::*;

/// A name's visible characters, their ASCII-lowercase form and their skeleton, index-aligned.
#[derive(Debug, Clone, Default)]
pub(super) struct Spelling {
    pub(super) raw: Vec<char>,
    pub(super) fold: Vec<char>,
    pub(super) skel: Vec<char>,
    pub(super) hidden: bool,
    pub(super) diacritic: bool,
}

impl Spelling {
    pub(super) fn of(name: &str) -> Self {
        let mut s = Spelling::default();
        for c in name.chars() {
            match glyph(c) {
                Glyph::Visible(k) => {
                    s.raw.push(c);
                    s.fold.push(c.to_ascii_lowercase());
                    s.skel.push(k);
                }
                Glyph::Hidden => s.hidden = true,
                Glyph::Diacritic => s.diacritic = true,
            }
        }
        s
    }
}

pub(super) enum Glyph {
    Visible(char),
    Hidden,
    /// A combining mark: visible, but it only decorates the letter before it.
    Diacritic,
}

pub(super) fn glyph(c: char) -> Glyph {
    if c.is_ascii() {
        return Glyph::Visible(fold_ascii(c));
    }
    if is_hidden(c) {
        return Glyph::Hidden;
    }
    if is_combining(c) {
        return Glyph::Diacritic;
    }
    if let Some(p) = prototype(c) {
        return Glyph::Visible(fold_ascii(p));
    }
    // Uppercase forms the table leaves out usually look like their lowercase, which it has.
    let mut lower = c.to_lowercase();
    if let (Some(l), None) = (lower.next(), lower.next()) {
        if l.is_ascii() {
            return Glyph::Visible(fold_ascii(l));
        }
        if let Some(p) = prototype(l) {
            return Glyph::Visible(fold_ascii(p));
        }
        return Glyph::Visible(l);
    }
    Glyph::Visible(c)
}

/// Collapses ASCII characters that are easy to misread for each other onto one prototype.
pub(super) fn fold_ascii(c: char) -> char {
    match c.to_ascii_lowercase() {
        '0' => 'o',
        '1' | 'i' => 'l',
        '3' => 'e',
        '5' => 's',
        other => other,
    }
}

/// Multi-letter look-alikes, in skeleton form (so `cI` and `c1` also read as `d`). A `match`
/// rather than a table because it runs in every cell of the distance matrix.
pub(super) fn is_pair(first: char, second: char, single: char) -> bool {
    matches!(
        (first, second, single),
        ('r', 'n', 'm') | ('v', 'v', 'w') | ('c', 'l', 'd')
    )
}

/// Bidirectional formatting characters: they reorder what is displayed.
pub(super) fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Characters that render as nothing (or as blank space that is not `White_Space`).
pub(super) fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200D}'
            | '\u{2060}'..='\u{2064}'
            | '\u{206A}'..='\u{206F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E007F}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

pub(super) fn is_combining(c: char) -> bool {
    matches!(
        c,
        '\u{0300}'..='\u{036F}'
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{20D0}'..='\u{20FF}'
            | '\u{FE20}'..='\u{FE2F}'
    )
}

/// The ASCII character a non-ASCII one is drawn to look like (a letter, digit, `-`, `_` or
/// `.`), for the confusables worth catching in a model id. Only visual likeness matters: the
/// result feeds [`fold_ascii`], never a transliteration.
pub(super) fn prototype(c: char) -> Option<char> {
    let cp = u32::from(c);
    // Fullwidth forms are ASCII shifted by a constant.
    if (0xFF01..=0xFF5E).contains(&cp) {
        let ascii = char::from_u32(cp - 0xFEE0)?;
        return is_name_ascii(ascii).then_some(ascii);
    }
    // Mathematical alphanumerics: 13 styles of A–Z a–z back to back (reserved holes included).
    if (0x1D400..=0x1D6A3).contains(&cp) {
        return Some(ascii_letter((cp - 0x1D400) % 52));
    }
    if (0x1D7CE..=0x1D7FF).contains(&cp) {
        return char::from_digit((cp - 0x1D7CE) % 10, 10);
    }
    // Circled letters and digits.
    if (0x24B6..=0x24E9).contains(&cp) {
        return Some(ascii_letter(cp - 0x24B6));
    }
    if (0x2460..=0x2468).contains(&cp) {
        return char::from_digit(cp - 0x2460 + 1, 10);
    }
    Some(match c {
        // Cyrillic
        'а' => 'a',
        'в' | 'ь' => 'b',
        'е' | 'ё' | 'є' => 'e',
        'з' => '3',
        'і' | 'ї' => 'i',
        'ј' => 'j',
        'к' => 'k',
        'м' => 'm',
        'н' => 'h',
        'о' => 'o',
        'п' => 'n',
        'р' => 'p',
        'с' => 'c',
        'т' => 't',
        'у' | 'ү' => 'y',
        'х' => 'x',
        'г' => 'r',
        'ѕ' => 's',
        'һ' => 'h',
        'ԁ' => 'd',
        'ԛ' => 'q',
        'ԝ' | 'ѡ' => 'w',
        'ӏ' | 'Ӏ' => 'l',
        'А' => 'A',
        'В' => 'B',
        'Е' | 'Ё' => 'E',
        'З' => '3',
        'І' | 'Ї' => 'I',
        'Ј' => 'J',
        'К' => 'K',
        'М' => 'M',
        'Н' => 'H',
        'О' => 'O',
        'Р' => 'P',
        'С' => 'C',
        'Т' => 'T',
        'У' | 'Ү' => 'Y',
        'Х' => 'X',
        'Ѕ' => 'S',
        'Ԛ' => 'Q',
        'Ԝ' => 'W',
        // Greek
        'α' | 'ά' => 'a',
        'β' => 'b',
        'γ' => 'y',
        'ε' | 'έ' => 'e',
        'η' | 'ή' => 'n',
        'ι' | 'ί' | 'ϊ' | 'ΐ' => 'i',
        'κ' => 'k',
        'ν' => 'v',
        'ο' | 'ό' => 'o',
        'ρ' => 'p',
        'τ' => 't',
        'υ' | 'ύ' | 'ϋ' => 'u',
        'χ' => 'x',
        'ω' | 'ώ' => 'w',
        'ϲ' => 'c',
        'ϳ' => 'j',
        'Α' | 'Ά' => 'A',
        'Β' => 'B',
        'Ε' | 'Έ' => 'E',
        'Ζ' => 'Z',
        'Η' | 'Ή' => 'H',
        'Ι' | 'Ί' | 'Ϊ' => 'I',
        'Κ' => 'K',
        'Μ' => 'M',
        'Ν' => 'N',
        'Ο' | 'Ό' => 'O',
        'Ρ' => 'P',
        'Τ' => 'T',
        'Υ' | 'Ύ' | 'Ϋ' => 'Y',
        'Χ' => 'X',
        'Ϲ' => 'C',
        'Ϳ' => 'J',
        // Armenian
        'օ' => 'o',
        'ս' => 'u',
        'ո' => 'n',
        'հ' => 'h',
        'զ' => 'q',
        // Latin letters from IPA, small capitals and other blocks
        'ı' | 'ɩ' | 'ɪ' | 'ⁱ' => 'i',
        'ǀ' | 'ℓ' | 'ʟ' | 'ł' | 'ŀ' => 'l',
        'ɑ' | 'ᴀ' => 'a',
        'ʙ' => 'b',
        'ᴄ' => 'c',
        'ᴅ' | 'đ' | 'ď' => 'd',
        'ᴇ' => 'e',
        'ſ' => 'f',
        'ɡ' | 'ɢ' => 'g',
        'ʜ' | 'ħ' => 'h',
        'ᴊ' => 'j',
        'ᴋ' => 'k',
        'ᴍ' => 'm',
        'ɴ' | 'ⁿ' => 'n',
        'ᴏ' | 'ø' => 'o',
        'ᴘ' => 'p',
        'ʀ' => 'r',
        'ꜱ' => 's',
        'ᴛ' => 't',
        'ᴜ' => 'u',
        'ᴠ' => 'v',
        'ᴡ' => 'w',
        'ʏ' => 'y',
        'ᴢ' => 'z',
        'İ' => 'I',
        // Letters with diacritics (uppercase ones reach these through `to_lowercase`)
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => 'c',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => 'e',
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => 'g',
        'ĥ' => 'h',
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' => 'i',
        'ĵ' => 'j',
        'ķ' => 'k',
        'ĺ' | 'ļ' | 'ľ' => 'l',
        'ñ' | 'ń' | 'ņ' | 'ň' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ō' | 'ŏ' | 'ő' => 'o',
        'ŕ' | 'ŗ' | 'ř' => 'r',
        'ś' | 'ŝ' | 'ş' | 'š' => 's',
        'ţ' | 'ť' | 'ŧ' => 't',
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => 'u',
        'ŵ' => 'w',
        'ý' | 'ÿ' | 'ŷ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        // Letterlike symbols and Roman numerals
        'ℎ' => 'h',
        'ℊ' => 'g',
        'ℯ' => 'e',
        'ℴ' => 'o',
        'ℹ' => 'i',
        'ℂ' | 'ℭ' => 'C',
        'ℍ' | 'ℋ' | 'ℌ' => 'H',
        'ℕ' => 'N',
        'ℙ' => 'P',
        'ℚ' => 'Q',
        'ℝ' | 'ℛ' | 'ℜ' => 'R',
        'ℤ' | 'ℨ' => 'Z',
        'ℬ' => 'B',
        'ℰ' => 'E',
        'ℱ' => 'F',
        'ℐ' | 'ℑ' => 'I',
        'ℒ' => 'L',
        'ℳ' => 'M',
        '\u{212A}' => 'K',
        '\u{212B}' => 'A',
        'Ⅰ' => 'I',
        'Ⅴ' => 'V',
        'Ⅹ' => 'X',
        'Ⅼ' => 'L',
        'Ⅽ' => 'C',
        'Ⅾ' => 'D',
        'Ⅿ' => 'M',
        'ⅰ' => 'i',
        'ⅴ' => 'v',
        'ⅹ' => 'x',
        'ⅼ' => 'l',
        'ⅽ' => 'c',
        'ⅾ' => 'd',
        'ⅿ' => 'm',
        // Superscript and subscript digits
        '⁰' | '₀' => '0',
        '¹' | '₁' => '1',
        '²' | '₂' => '2',
        '³' | '₃' => '3',
        '⁴' | '₄' => '4',
        '⁵' | '₅' => '5',
        '⁶' | '₆' => '6',
        '⁷' | '₇' => '7',
        '⁸' | '₈' => '8',
        '⁹' | '₉' => '9',
        // Dashes, dots and low lines
        '‐' | '‑' | '‒' | '–' | '—' | '―' | '−' | '﹣' | '˗' | '⁃' | 'ー' | '一' => {
            '-'
        }
        '․' | '·' => '.',
        'ˍ' => '_',
        _ => return None,
    })
}

pub(super) fn ascii_letter(k: u32) -> char {
    // `k < 52` at every call site, so the narrowing cannot truncate.
    let k = (k % 52) as u8;
    if k < 26 {
        char::from(b'A' + k)
    } else {
        char::from(b'a' + k - 26)
    }
}
