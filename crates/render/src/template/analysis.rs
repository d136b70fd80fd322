//! What a template part reads, found from its syntax tree before anything
//! renders: the data paths it may read (with their lines), the profile keys a
//! fetch must carry, filters, tests and functions that do not exist, and names
//! outside the context.
//!
//! Local names are followed: `{% for item in event.cart %}{{ item.price }}`
//! reads `event.cart[].price`, and `{% set loyalty = profile.loyalty %}`
//! makes `loyalty.tier` a read of `profile.loyalty.tier`. Where the analysis
//! cannot tell which key is read (`profile[name]`, `profile.items()`), it
//! says the whole value is read: a projection built from it can fetch too
//! much, never too little.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use minijinja::machinery::ast::{self, CallArg, Expr, Stmt};
use minijinja::syntax::SyntaxConfig;

use super::env::{GLOBALS, TESTS, allowed_filters};
pub use super::projection::ProfileProjection;
use super::{CompileWarning, PartName};
use crate::context::VARIABLES;

/// Names a template may use without defining them, besides the context's
/// variables and the globals: the loop object, and a macro's `caller`,
/// varargs and kwargs. (Includes, imports and blocks are not enabled.)
const IMPLICIT: &[&str] = &["loop", "caller", "varargs", "kwargs"];

/// Filters whose result holds the same elements as their input, so that a
/// loop over `event.cart | sort(attribute="price")` still reads `event.cart[]`.
const SAME_ELEMENTS: &[&str] = &[
    "list",
    "reject",
    "rejectattr",
    "reverse",
    "select",
    "selectattr",
    "sort",
    "unique",
];

/// Filters that cut their input into lists of its elements: a loop over
/// `event.cart | batch(2)` yields lists whose items are `event.cart[]`.
const CHUNKS: &[&str] = &["batch", "slice"];

/// Filters whose result is one element of their input.
const ONE_ELEMENT: &[&str] = &["first", "last"];

/// Filters whose result is their input when the input is there.
const SAME_VALUE: &[&str] = &["d", "default"];

/// A data path a part may read, and the line that reads it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Read {
    /// `profile.location.city`, `event.cart[].price`: loops collapse to `[]`.
    pub path: String,
    pub line: usize,
}

/// A problem that stops a part from compiling, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// What one part reads and what is wrong with it.
#[derive(Debug, Clone, Default)]
pub struct PartAnalysis {
    /// Sorted by line, then path; each (path, line) once.
    pub reads: Vec<Read>,
    pub profile: ProfileProjection,
    /// Filters, tests and functions that do not exist.
    pub errors: Vec<PartError>,
    /// Names that are not in the context.
    pub warnings: Vec<CompileWarning>,
}

/// Analyzes one part's source. Fails with the syntax error, if it has one.
pub fn analyze(part: PartName, source: &str) -> Result<PartAnalysis, PartError> {
    let tree = minijinja::machinery::parse(source, part.as_str(), SyntaxConfig::default())
        .map_err(|error| syntax_error(source, &error))?;
    let mut walker = Walker::new(part);
    collect_macros(std::slice::from_ref(&tree), &mut walker.macros);
    walker.stmt(&tree);
    Ok(walker.finish())
}

/// A syntax error with the line and column minijinja found it at.
fn syntax_error(source: &str, error: &minijinja::Error) -> PartError {
    let line = error.line().unwrap_or(1);
    let column = error
        .range()
        .and_then(|range| source.get(..range.start))
        .map_or(1, |before| {
            1 + before[before.rfind('\n').map_or(0, |at| at + 1)..]
                .chars()
                .count()
        });
    PartError {
        line,
        column,
        message: super::describe(error),
    }
}

/// One step of a data path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Step {
    Key(String),
    /// Any element of a list (or any key of a map being iterated).
    Item,
}

/// A path rooted at one of the context's variables.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Path {
    root: &'static str,
    steps: Vec<Step>,
}

impl Path {
    fn child(&self, step: Step) -> Self {
        let mut steps = self.steps.clone();
        steps.push(step);
        Self {
            root: self.root,
            steps,
        }
    }

    fn render(&self) -> String {
        let mut out = self.root.to_owned();
        for step in &self.steps {
            match step {
                Step::Key(key) => push_key(&mut out, key),
                Step::Item => out.push_str("[]"),
            }
        }
        out
    }
}

/// Appends `key` to a rendered path: `.key` for a name, `["a key"]` for
/// anything else, so a path reads as the template would write it.
pub(crate) fn push_key(path: &mut String, key: &str) {
    let mut chars = key.chars();
    let is_name = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if is_name {
        path.push('.');
        path.push_str(key);
    } else {
        let quoted = serde_json::to_string(key).expect("a string serializes");
        let _ = write!(path, "[{quoted}]");
    }
}

/// What a local name stands for.
#[derive(Debug, Clone)]
enum Binding {
    /// A value from the context, such as a loop variable over `event.cart`.
    Data(Path),
    /// Anything else: a literal, a macro argument, a computed value.
    Local,
}

struct Walker<'s> {
    part: PartName,
    scopes: Vec<HashMap<&'s str, Binding>>,
    macros: HashSet<&'s str>,
    filters: Vec<&'static str>,
    /// (line, path): sorted as reported.
    reads: BTreeSet<(usize, Path)>,
    /// The whole profile is read (or a key the analysis cannot name).
    whole_profile: bool,
    errors: Vec<PartError>,
    warnings: Vec<CompileWarning>,
    warned: HashSet<(usize, &'s str)>,
}

/// Every macro a part defines, at any depth: a call is checked against
/// them wherever it is.
fn collect_macros<'s>(stmts: &[Stmt<'s>], into: &mut HashSet<&'s str>) {
    for stmt in stmts {
        match stmt {
            Stmt::Template(t) => collect_macros(&t.children, into),
            Stmt::Macro(m) => {
                into.insert(m.name);
                collect_macros(&m.body, into);
            }
            Stmt::CallBlock(c) => collect_macros(&c.macro_decl.body, into),
            Stmt::SetBlock(s) => collect_macros(&s.body, into),
            Stmt::ForLoop(l) => {
                collect_macros(&l.body, into);
                collect_macros(&l.else_body, into);
            }
            Stmt::IfCond(c) => {
                collect_macros(&c.true_body, into);
                collect_macros(&c.false_body, into);
            }
            Stmt::WithBlock(w) => collect_macros(&w.body, into),
            Stmt::AutoEscape(a) => collect_macros(&a.body, into),
            Stmt::FilterBlock(f) => collect_macros(&f.body, into),
            _ => {}
        }
    }
}

impl<'s> Walker<'s> {
    fn new(part: PartName) -> Self {
        Self {
            part,
            scopes: vec![HashMap::new()],
            macros: HashSet::new(),
            filters: allowed_filters(),
            reads: BTreeSet::new(),
            whole_profile: false,
            errors: Vec::new(),
            warnings: Vec::new(),
            warned: HashSet::new(),
        }
    }

    fn finish(self) -> PartAnalysis {
        let profile = if self.whole_profile {
            ProfileProjection::All
        } else {
            ProfileProjection::Keys(
                self.reads
                    .iter()
                    .filter(|(_, path)| path.root == "profile")
                    .filter_map(|(_, path)| match path.steps.first() {
                        Some(Step::Key(key)) => Some(key.clone()),
                        _ => None,
                    })
                    .collect(),
            )
        };
        PartAnalysis {
            reads: self
                .reads
                .into_iter()
                .map(|(line, path)| Read {
                    path: path.render(),
                    line,
                })
                .collect(),
            profile,
            errors: self.errors,
            warnings: self.warnings,
        }
    }

    fn stmts(&mut self, stmts: &[Stmt<'s>]) {
        for stmt in stmts {
            self.stmt(stmt);
        }
    }

    fn scoped(&mut self, f: impl FnOnce(&mut Self)) {
        self.scopes.push(HashMap::new());
        f(self);
        self.scopes.pop();
    }

    fn stmt(&mut self, stmt: &Stmt<'s>) {
        match stmt {
            Stmt::Template(t) => self.stmts(&t.children),
            Stmt::EmitExpr(e) => self.consume(&e.expr),
            Stmt::EmitRaw(_) => {}
            Stmt::ForLoop(l) => {
                let items = self.value(&l.iter);
                if let Some(items) = &items {
                    self.record(l.iter.span().start_line, items.clone());
                }
                let chunks = matches!(&l.iter, Expr::Filter(f) if CHUNKS.contains(&f.name));
                self.scoped(|this| {
                    let item = items.map(|items| {
                        if chunks {
                            items
                        } else {
                            items.child(Step::Item)
                        }
                    });
                    this.bind(&l.target, item);
                    if let Some(filter) = &l.filter_expr {
                        this.consume(filter);
                    }
                    this.stmts(&l.body);
                });
                self.stmts(&l.else_body);
            }
            Stmt::IfCond(c) => {
                self.consume(&c.expr);
                self.stmts(&c.true_body);
                self.stmts(&c.false_body);
            }
            Stmt::WithBlock(w) => self.scoped(|this| {
                for (target, expr) in &w.assignments {
                    let value = this.bound_value(expr);
                    this.bind(target, value);
                }
                this.stmts(&w.body);
            }),
            Stmt::Set(s) => {
                let value = self.bound_value(&s.expr);
                self.bind(&s.target, value);
            }
            Stmt::SetBlock(s) => {
                if let Some(filter) = &s.filter {
                    self.consume(filter);
                }
                self.stmts(&s.body);
                self.bind(&s.target, None);
            }
            Stmt::AutoEscape(a) => {
                self.consume(&a.enabled);
                self.stmts(&a.body);
            }
            Stmt::FilterBlock(f) => {
                self.consume(&f.filter);
                self.stmts(&f.body);
            }
            Stmt::Macro(m) => self.define_macro(m),
            Stmt::CallBlock(c) => {
                self.call(&c.call);
                self.define_macro(&c.macro_decl);
            }
            Stmt::Do(d) => self.call(&d.call),
        }
    }

    fn define_macro(&mut self, m: &ast::Macro<'s>) {
        for default in &m.defaults {
            self.consume(default);
        }
        self.scoped(|this| {
            for arg in &m.args {
                this.bind(arg, None);
            }
            this.stmts(&m.body);
        });
    }

    /// Binds a `set`, `with` or `for` target in the innermost scope.
    fn bind(&mut self, target: &Expr<'s>, value: Option<Path>) {
        match target {
            // A context variable set in a branch is still the context's
            // when the branch is not taken: never treat it as shadowed.
            Expr::Var(var) if VARIABLES.contains(&var.id) => {}
            Expr::Var(var) => {
                let binding = value.map_or(Binding::Local, Binding::Data);
                self.scopes
                    .last_mut()
                    .expect("there is always a scope")
                    .insert(var.id, binding);
            }
            Expr::Tuple(tuple) => {
                for item in &tuple.items {
                    self.bind(item, None);
                }
            }
            // `{% set ns.total = … %}` assigns into a namespace.
            other => self.consume(other),
        }
    }

    /// The path a `set` or `with` binds, recorded as read. Not only because
    /// the value is evaluated even if the name is never used: the walker
    /// keeps one binding per name in source order, while a template may
    /// rebind a name in a branch or a loop, or a macro may read a name set
    /// after it; recording the bound value keeps the projection a superset.
    fn bound_value(&mut self, expr: &Expr<'s>) -> Option<Path> {
        let value = self.value(expr)?;
        self.record(expr.span().start_line, value.clone());
        Some(value)
    }

    fn lookup(&self, name: &str) -> Option<&Binding> {
        self.scopes.iter().rev().find_map(|scope| scope.get(name))
    }

    fn record(&mut self, line: u16, path: Path) {
        if path.root == "profile" && !matches!(path.steps.first(), Some(Step::Key(_))) {
            self.whole_profile = true;
        }
        self.reads.insert((usize::from(line), path));
    }

    /// Evaluates `expr` for its value as a whole (printed, compared, passed
    /// on): whatever data it stands for is read.
    fn consume(&mut self, expr: &Expr<'s>) {
        if let Some(path) = self.value(expr) {
            self.record(expr.span().start_line, path);
        }
    }

    fn args(&mut self, args: &[CallArg<'s>]) {
        for arg in args {
            match arg {
                CallArg::Pos(e)
                | CallArg::Kwarg(_, e)
                | CallArg::PosSplat(e)
                | CallArg::KwargSplat(e) => self.consume(e),
            }
        }
    }

    /// The data path `expr` stands for, if it is one, recording every read
    /// made on the way; the path itself is left to the caller, which knows
    /// whether it is read as a whole or only walked through.
    fn value(&mut self, expr: &Expr<'s>) -> Option<Path> {
        match expr {
            Expr::Var(var) => self.variable(var.id, expr),
            Expr::Const(_) => None,
            Expr::GetAttr(a) => {
                let base = self.value(&a.expr)?;
                Some(base.child(Step::Key(a.name.to_owned())))
            }
            Expr::GetItem(g) => {
                let base = self.value(&g.expr);
                let constant = match &g.subscript_expr {
                    Expr::Const(c) => Some(c.value.clone()),
                    _ => None,
                };
                match constant {
                    Some(key) if key.as_str().is_some() => {
                        let key = key.as_str().unwrap_or_default().to_owned();
                        base.map(|base| base.child(Step::Key(key)))
                    }
                    Some(index) if index.is_integer() => base.map(|base| base.child(Step::Item)),
                    _ => {
                        // A key the analysis cannot name: the whole value.
                        self.consume(&g.subscript_expr);
                        if let Some(base) = base {
                            self.record(g.expr.span().start_line, base);
                        }
                        None
                    }
                }
            }
            Expr::Slice(s) => {
                for bound in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.consume(bound);
                }
                self.value(&s.expr)
            }
            Expr::Filter(f) => self.filter(f, expr),
            Expr::Test(t) => {
                if !TESTS.contains(&t.name) {
                    let suggestion = suggest(t.name, TESTS.iter().copied());
                    self.error(expr, format!("unknown test `{}`{suggestion}", t.name));
                }
                self.consume(&t.expr);
                self.args(&t.args);
                None
            }
            Expr::Call(c) => {
                self.call(c);
                None
            }
            Expr::UnaryOp(u) => {
                self.consume(&u.expr);
                None
            }
            Expr::BinOp(b) => {
                self.consume(&b.left);
                self.consume(&b.right);
                None
            }
            Expr::Compare(c) => {
                self.consume(&c.expr);
                for op in &c.ops {
                    self.consume(&op.expr);
                }
                None
            }
            Expr::IfExpr(i) => {
                self.consume(&i.test_expr);
                self.consume(&i.true_expr);
                if let Some(otherwise) = &i.false_expr {
                    self.consume(otherwise);
                }
                None
            }
            Expr::List(l) => {
                for item in &l.items {
                    self.consume(item);
                }
                None
            }
            Expr::Tuple(t) => {
                for item in &t.items {
                    self.consume(item);
                }
                None
            }
            Expr::Map(m) => {
                for item in m.keys.iter().chain(&m.values) {
                    self.consume(item);
                }
                None
            }
        }
    }

    fn variable(&mut self, name: &'s str, expr: &Expr<'s>) -> Option<Path> {
        if let Some(binding) = self.lookup(name) {
            return match binding {
                Binding::Data(path) => Some(path.clone()),
                Binding::Local => None,
            };
        }
        if let Some(root) = VARIABLES.iter().find(|root| **root == name) {
            return Some(Path {
                root,
                steps: Vec::new(),
            });
        }
        if !(self.macros.contains(name) || GLOBALS.contains(&name) || IMPLICIT.contains(&name)) {
            let line = usize::from(expr.span().start_line);
            if self.warned.insert((line, name)) {
                let suggestion = suggest(name, VARIABLES.iter().copied());
                self.warnings.push(CompileWarning {
                    part: self.part,
                    line,
                    column: Some(usize::from(expr.span().start_col) + 1),
                    message: format!(
                        "`{name}` is not in the context ({}), so it is always empty{suggestion}",
                        VARIABLES.join(", ")
                    ),
                });
            }
        }
        None
    }

    fn filter(&mut self, f: &ast::Filter<'s>, expr: &Expr<'s>) -> Option<Path> {
        if !self.filters.contains(&f.name) {
            let suggestion = suggest(f.name, self.filters.iter().copied());
            self.error(expr, format!("unknown filter `{}`{suggestion}", f.name));
        }
        self.args(&f.args);
        let input = f.expr.as_ref()?;
        let path = self.value(input)?;
        let line = input.span().start_line;
        if SAME_ELEMENTS.contains(&f.name)
            || SAME_VALUE.contains(&f.name)
            || CHUNKS.contains(&f.name)
        {
            // Only walked through here; what is read of it is recorded
            // where the result is used.
            self.record(line, path.clone());
            Some(path)
        } else if ONE_ELEMENT.contains(&f.name) {
            self.record(line, path.clone());
            Some(path.child(Step::Item))
        } else {
            self.record(line, path);
            None
        }
    }

    fn call(&mut self, call: &ast::Call<'s>) {
        match call.identify_call() {
            ast::CallType::Function(name) => {
                let known = self.lookup(name).is_some()
                    || self.macros.contains(name)
                    || GLOBALS.contains(&name)
                    || IMPLICIT.contains(&name);
                if !known {
                    let candidates = GLOBALS.iter().copied().chain(self.macros.iter().copied());
                    let suggestion = suggest(name, candidates.collect::<Vec<_>>().into_iter());
                    self.error(&call.expr, format!("unknown function `{name}`{suggestion}"));
                }
            }
            // A method (`items()`, `get(…)`) may read any part of its object.
            ast::CallType::Method(base, _) => self.consume(base),
            ast::CallType::Object(callee) => self.consume(callee),
        }
        self.args(&call.args);
    }

    fn error(&mut self, expr: &Expr<'s>, message: String) {
        let span = expr.span();
        self.errors.push(PartError {
            line: usize::from(span.start_line),
            column: usize::from(span.start_col) + 1,
            message,
        });
    }
}

/// `; did you mean `profile`?` when a known name is a typo away.
fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    candidates
        .map(|candidate| (strsim::damerau_levenshtein(name, candidate), candidate))
        // One edit in three characters: `profil` and `titel` get a
        // suggestion, `shout` is not offered `sort`.
        .filter(|(distance, _)| *distance <= 2 && distance * 3 <= name.len())
        .min()
        .map(|(_, candidate)| format!("; did you mean `{candidate}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
