//! Parser tests: heredocs, directives, continuations, errors with lines.

use super::*;

fn p(text: &str) -> Ast {
    parse("Dockerfile", text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn heredocs() {
    let ast =
        p("FROM x\nRUN <<EOF bash\necho $HOME\nEOF\nCOPY <<-\"A\" <<B /dst/\n\tone\n\tA\ntwo\nB\nRUN echo done\n");
    assert_eq!(ast.nodes.len(), 4);
    let run = &ast.nodes[1];
    assert_eq!(run.heredocs.len(), 1);
    assert_eq!(run.heredocs[0].name, "EOF");
    assert_eq!(run.heredocs[0].content, "echo $HOME\n");
    assert!(run.heredocs[0].expand);
    assert_eq!((run.start_line, run.end_line), (2, 4));
    let copy = &ast.nodes[2];
    assert_eq!(copy.heredocs.len(), 2);
    assert_eq!(copy.heredocs[0].name, "A");
    assert!(copy.heredocs[0].chomp && !copy.heredocs[0].expand);
    assert_eq!(copy.heredocs[0].chomped_content(), "one\n");
    assert_eq!(copy.heredocs[1].content, "two\n");
    assert_eq!(ast.nodes[3].start_line, 10);
}

#[test]
fn heredoc_not_in_json_or_quotes() {
    let ast = p("FROM x\nRUN [\"sh\", \"-c\", \"cat <<EOF\"]\nRUN echo \"<<EOF\"\n");
    assert!(ast.nodes.iter().all(|n| n.heredocs.is_empty()));
}

#[test]
fn unterminated_heredoc_names_line() {
    let e = parse("Dockerfile", "FROM x\nRUN <<EOF\nabc\n").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.to_string().starts_with("Dockerfile:2: unterminated heredoc"), "{e}");
}

#[test]
fn unknown_instruction_names_line_and_word() {
    let e = parse("Containerfile", "FROM x\n\nFORM y\n").unwrap_err();
    assert_eq!(e.to_string(), "Containerfile:3: unknown instruction: FORM");
}

#[test]
fn directives_and_backtick() {
    let ast =
        p("# syntax=docker/dockerfile:1\n# check=skip=all\n# escape=`\nFROM x\nRUN echo a `\n  b\nRUN dir c:\\\n");
    assert_eq!(ast.escape, '`');
    assert_eq!(ast.directives.len(), 3);
    assert_eq!(ast.nodes[1].args, vec!["echo a   b"]);
    assert_eq!(ast.nodes[2].args, vec!["dir c:\\"]);
    let e = parse("Dockerfile", "# escape=x\nFROM a\n").unwrap_err();
    assert_eq!(e.line, 1);
    let e = parse("Dockerfile", "# escape=`\n# escape=\\\nFROM a\n").unwrap_err();
    assert_eq!(e.line, 2);
}

#[test]
fn directive_after_comment_is_a_comment() {
    let ast = p("# hello\n# escape=`\nFROM a\n");
    assert_eq!(ast.escape, '\\');
}

#[test]
fn empty_continuation_warns() {
    let ast = p("FROM a\nRUN a \\\n\n  b\n");
    assert_eq!(ast.warnings.len(), 1);
    assert_eq!(ast.nodes[1].args, vec!["a   b"]);
}

#[test]
fn onbuild_and_json() {
    let ast = p("FROM a\nONBUILD COPY --from=x a b\nCMD [\"a\", \"b\"]\n");
    assert_eq!(ast.dump(), "(from \"a\")\n(onbuild (copy [\"--from=x\"] \"a\" \"b\"))\n(cmd \"a\" \"b\")\n");
    assert!(ast.nodes[2].json);
}
