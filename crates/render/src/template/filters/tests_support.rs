//! Test helpers shared by the filter modules' tests: an environment with
//! the filters registered, and rendering that expects success or an error.

use minijinja::{Environment, Error, Value};

use super::register;

pub(super) fn env() -> Environment<'static> {
    let mut env = Environment::new();
    register(&mut env);
    env
}

fn render(source: &str, ctx: Value) -> Result<String, Error> {
    env().render_str(source, ctx)
}

pub(super) fn ok(source: &str, ctx: Value) -> String {
    render(source, ctx).unwrap_or_else(|e| panic!("{source}: {e:#}"))
}

/// The error detail, which is what an author sees next to the location.
pub(super) fn err(source: &str, ctx: Value) -> String {
    match render(source, ctx) {
        Ok(out) => panic!("{source}: expected an error, got {out:?}"),
        Err(e) => e.detail().unwrap_or_default().to_owned(),
    }
}
