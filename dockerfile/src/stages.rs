//! A Dockerfile as build stages, and the order a target's stages can be built in.
//!
//! A stage starts at `FROM`; `ARG`s before the first `FROM` are the global args. A stage depends on an earlier
//! stage when its `FROM`, a `COPY --from` or a `RUN --mount=from=` names that stage (by name, case-insensitively,
//! or by index). [`Dockerfile::plan`] gives the stages a target needs, grouped in levels: the stages of one level
//! depend only on earlier levels and can be built in parallel.

use std::collections::BTreeMap;

use crate::args::GlobalScope;
use crate::error::{Error, ErrorKind, Result};
use crate::instruction::{parse_command, Command, Instruction};
use crate::parser::{self, Directive, Warning};
use crate::shell::Lexer;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    /// The file name errors are reported under.
    pub file: String,
    /// The escape character.
    pub escape: char,
    /// Parser directives.
    pub directives: Vec<Directive>,
    /// The `ARG` instructions before the first `FROM`.
    pub meta_args: Vec<Command>,
    /// The stages, in file order.
    pub stages: Vec<Stage>,
    /// Parser warnings.
    pub warnings: Vec<Warning>,
}

/// One build stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Position in the file, from 0.
    pub index: usize,
    /// The name after `AS`, lower case.
    pub name: Option<String>,
    /// The base as written (image, earlier stage, `scratch`; may hold `$VAR`s of global args).
    pub base: String,
    /// `FROM --platform`, as written.
    pub platform: Option<String>,
    /// The line of the `FROM`.
    pub line: usize,
    /// The instructions after `FROM`.
    pub instructions: Vec<Command>,
}

/// What a stage reference resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageRef {
    /// An earlier stage, by index.
    Stage(usize),
    /// An image (or `scratch`).
    Image(String),
}

/// The stages a target needs, in buildable order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    /// The target stage.
    pub target: usize,
    /// For each needed stage, the stages it depends on directly.
    pub deps: BTreeMap<usize, Vec<usize>>,
    /// Needed stages grouped by level; each level depends only on earlier ones. The target is alone in the last.
    pub levels: Vec<Vec<usize>>,
}

impl BuildPlan {
    /// The needed stages, dependencies before dependents.
    pub fn order(&self) -> Vec<usize> {
        self.levels.iter().flatten().copied().collect()
    }
}

impl Dockerfile {
    /// Parses Dockerfile text; errors name `file` and the line.
    pub fn parse(file: &str, text: &str) -> Result<Self> {
        Self::from_ast(&parser::parse(file, text)?)
    }

    /// Builds the typed Dockerfile from a parsed tree.
    pub fn from_ast(ast: &parser::Ast) -> Result<Self> {
        let mut df = Dockerfile {
            file: ast.file.clone(),
            escape: ast.escape,
            directives: ast.directives.clone(),
            meta_args: Vec::new(),
            stages: Vec::new(),
            warnings: ast.warnings.clone(),
        };
        for node in &ast.nodes {
            let cmd = parse_command(&ast.file, node)?;
            let fail = |msg: String| Error::new(&ast.file, node.start_line, node.end_line, ErrorKind::Stage(msg));
            match (&cmd.instruction, df.stages.last_mut()) {
                (Instruction::From(from), _) => {
                    if let Some(name) = &from.name {
                        if df.stages.iter().any(|s| s.name.as_ref() == Some(name)) {
                            return Err(fail(format!("duplicate stage name \"{name}\"")));
                        }
                    }
                    df.stages.push(Stage {
                        index: df.stages.len(),
                        name: from.name.clone(),
                        base: from.image.clone(),
                        platform: from.platform.clone(),
                        line: node.start_line,
                        instructions: Vec::new(),
                    });
                }
                (Instruction::Arg(_), None) => df.meta_args.push(cmd),
                (_, Some(stage)) => stage.instructions.push(cmd),
                (_, None) => {
                    return Err(fail(format!(
                        "{} before the first FROM: no build stage in current context",
                        node.original_name
                    )))
                }
            }
        }
        if df.stages.is_empty() {
            let line = ast.nodes.last().map_or(1, |n| n.start_line);
            return Err(Error::new(
                &ast.file,
                line,
                line,
                ErrorKind::Stage("Dockerfile contains no stages to build".into()),
            ));
        }
        Ok(df)
    }

    /// A lexer for this file's escape character.
    pub fn lexer(&self) -> Lexer {
        Lexer::new(self.escape)
    }

    /// The stage named `name` (case-insensitive).
    pub fn stage_by_name(&self, name: &str) -> Option<&Stage> {
        let lower = name.to_lowercase();
        self.stages.iter().find(|s| s.name.as_deref() == Some(lower.as_str()))
    }

    /// Resolves a reference (`FROM x`, `COPY --from=x`, `--mount=from=x`) made on `line` from stage `from_stage`:
    /// a stage name or index must be of an earlier stage; anything else is an image.
    pub fn resolve(&self, reference: &str, from_stage: usize, line: usize) -> Result<StageRef> {
        let fail = |msg: String| Error::new(&self.file, line, line, ErrorKind::Stage(msg));
        let found = match reference.parse::<usize>() {
            Ok(i) if i < self.stages.len() => Some(i),
            Ok(i) => return Err(fail(format!("invalid stage index {i}: there are {} stages", self.stages.len()))),
            Err(_) => self.stage_by_name(reference).map(|s| s.index),
        };
        match found {
            Some(i) if i == from_stage => {
                Err(fail(format!("circular dependency: stage \"{reference}\" refers to itself")))
            }
            Some(i) if i > from_stage => Err(fail(format!(
                "stage \"{reference}\" is used before it is defined (forward references are not allowed)"
            ))),
            Some(i) => Ok(StageRef::Stage(i)),
            None => Ok(StageRef::Image(reference.to_string())),
        }
    }

    /// The stages `stage` depends on directly, with global args expanded in `FROM` and `--from` values.
    pub fn dependencies(&self, stage: &Stage, global: &GlobalScope) -> Result<Vec<usize>> {
        let mut deps = Vec::new();
        let lexer = self.lexer();
        let mut add = |reference: &str, line: usize| -> Result<()> {
            let expanded =
                lexer.process_word(reference, global).map_err(|e| Error::new(&self.file, line, line, e.into()))?;
            if let StageRef::Stage(i) = self.resolve(&expanded, stage.index, line)? {
                if !deps.contains(&i) {
                    deps.push(i);
                }
            }
            Ok(())
        };
        add(&stage.base, stage.line)?;
        for cmd in &stage.instructions {
            match &cmd.instruction {
                Instruction::Copy(c) => {
                    if let Some(from) = &c.from {
                        add(from, cmd.start_line)?;
                    }
                }
                Instruction::Run(r) => {
                    for m in &r.mounts {
                        if let Some(from) = &m.from {
                            add(from, cmd.start_line)?;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(deps)
    }

    /// The target stage: by name (case-insensitive) or index, or the last stage when `None`.
    pub fn target(&self, target: Option<&str>) -> Result<usize> {
        let last = self.stages.len().saturating_sub(1);
        let Some(t) = target else { return Ok(last) };
        if let Some(s) = self.stage_by_name(t) {
            return Ok(s.index);
        }
        match t.parse::<usize>() {
            Ok(i) if i < self.stages.len() => Ok(i),
            _ => {
                let line = self.stages.get(last).map_or(1, |s| s.line);
                Err(Error::new(
                    &self.file,
                    line,
                    line,
                    ErrorKind::Stage(format!("target stage \"{t}\" could not be found")),
                ))
            }
        }
    }

    /// The stages `target` (default: the last) needs, levelled for parallel building.
    pub fn plan(&self, target: Option<&str>, global: &GlobalScope) -> Result<BuildPlan> {
        let target = self.target(target)?;
        let mut deps: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if deps.contains_key(&i) {
                continue;
            }
            let d = self.dependencies(&self.stages[i], global)?;
            todo.extend(d.iter().copied());
            deps.insert(i, d);
        }
        // References only point backwards, so increasing index order sees every dependency first.
        let mut level: BTreeMap<usize, usize> = BTreeMap::new();
        for (&i, d) in &deps {
            let l = d.iter().filter_map(|j| level.get(j)).map(|l| l + 1).max().unwrap_or(0);
            level.insert(i, l);
        }
        let mut levels: Vec<Vec<usize>> = Vec::new();
        for (&i, &l) in &level {
            if levels.len() <= l {
                levels.resize(l + 1, Vec::new());
            }
            levels[l].push(i);
        }
        Ok(BuildPlan { target, deps, levels })
    }
}

#[cfg(test)]
mod tests;
