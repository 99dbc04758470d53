//! Shell patterns for `${VAR#p}`, `${VAR%p}` and `${VAR/p/r}`: `*` (any string), `?` (any character) and
//! backslash escapes of `*`, `?` and `\`; there are no bracket expressions.

use regex::Regex;

use super::ShellError;

/// Converts a shell pattern to a regular expression; `greedy` picks `*`'s longest match, `anchored` pins it to
/// the start of the text.
fn to_regex(pattern: &str, greedy: bool, anchored: bool) -> Result<Regex, ShellError> {
    let mut out = String::with_capacity(pattern.len() + 4);
    if anchored {
        out.push('^');
    }
    let star = if greedy { ".*" } else { ".*?" };
    let mut chars = pattern.chars().peekable();
    while let Some(tok) = chars.next() {
        match tok {
            '*' => out.push_str(star),
            '?' => out.push('.'),
            '\\' => {
                // `}` and `/` are escaped only to get them through `${...}`; the escape is not part of the pattern.
                if matches!(chars.peek(), Some('}' | '/')) {
                    continue;
                }
                match chars.next() {
                    Some(c @ ('*' | '?' | '\\')) => out.push_str(&regex::escape(&c.to_string())),
                    Some(c) => return Err(ShellError(format!("invalid escape '\\{c}'"))),
                    None => return Err(ShellError("invalid escape '\\'".to_string())),
                }
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    Regex::new(&out).map_err(|e| ShellError(e.to_string()))
}

fn invalid(pattern: &str, e: ShellError) -> ShellError {
    ShellError(format!("invalid pattern ({pattern}) in substitution: {}", e.0))
}

/// `${VAR#pattern}` / `${VAR##pattern}`: removes the shortest (longest if `greedy`) matching prefix.
pub(super) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, ShellError> {
    let re = to_regex(pattern, greedy, true).map_err(|e| invalid(pattern, e))?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_string(),
        None => value.to_string(),
    })
}

/// `${VAR%pattern}` / `${VAR%%pattern}`: removes the shortest (longest if `greedy`) matching suffix, by matching
/// the reversed pattern against the reversed value.
pub(super) fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, ShellError> {
    let reversed: String = value.chars().rev().collect();
    let out = trim_prefix(&reverse_pattern(pattern), &reversed, greedy)?;
    Ok(out.chars().rev().collect())
}

/// `${VAR/pattern/replacement}` (first match) or `${VAR//pattern/replacement}` (every match).
pub(super) fn replace(pattern: &str, replacement: &str, value: &str, all: bool) -> Result<String, ShellError> {
    let re = to_regex(pattern, true, false).map_err(|e| invalid(pattern, e))?;
    if all {
        return Ok(re.replace_all(value, replacement).into_owned());
    }
    Ok(match re.find(value) {
        Some(m) => format!("{}{}{}", &value[..m.start()], replacement, &value[m.end()..]),
        None => value.to_string(),
    })
}

/// Reverses a pattern keeping each escape in front of the character it escapes (`a\*c` gives `c\*a`).
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = vec!['\0'; chars.len()];
    let last = chars.len().saturating_sub(1);
    let mut i = 0;
    while i < chars.len() {
        let tok = chars[i];
        let at = last - i;
        if tok == '\\' && i != last {
            out[at - 1] = tok;
            out[at] = chars[i + 1];
            i += 2;
        } else {
            out[at] = tok;
            i += 1;
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_conversion() {
        assert_eq!(to_regex("*", true, true).unwrap().as_str(), "^.*");
        assert_eq!(to_regex("?", true, true).unwrap().as_str(), "^.");
        assert_eq!(to_regex("\\*", true, true).unwrap().as_str(), "^\\*");
        for bad in ["\\", "\\x", "\\\\\\"] {
            assert!(to_regex(bad, true, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn reversing() {
        assert_eq!(reverse_pattern("a\\*c"), "c\\*a");
        assert_eq!(reverse_pattern("\\\\\\ab"), "b\\a\\\\");
        assert_eq!(reverse_pattern("ab\\"), "\\ba");
        assert_eq!(reverse_pattern("\\\\b"), "b\\\\");
    }
}
