//! Walking a compiled rule against a context.
//!
//! Results borrow from the rule and the context where they can (`Cow`), so a rule that only reads
//! variables and compares them allocates nothing. Evaluation cannot fail: JSONLogic answers every
//! malformed input with some value, usually `null`, and flagd maps `null` to the default variant.

use std::borrow::Cow;

use serde_json::Value;

use super::coerce::truthy;
use super::compile::{Iteration, Node};
use super::operators;
use super::var::{Scope, VarPath};

pub static NULL: Value = Value::Null;

pub fn evaluate<'a>(node: &'a Node, scope: &Scope<'a>) -> Cow<'a, Value> {
    match node {
        Node::Literal(value) => Cow::Borrowed(value),
        Node::Array(items) => Cow::Owned(Value::Array(
            items
                .iter()
                .map(|item| evaluate(item, scope).into_owned())
                .collect(),
        )),
        Node::Var { path, default } => variable(path, default.as_deref(), scope),
        Node::DynamicVar { key, default } => {
            let path = VarPath::parse(&evaluate(key, scope));
            variable(&path, default.as_deref(), scope)
        }
        Node::If(args) => choose(args, scope),
        Node::And(args) => short_circuit(args, scope, false),
        Node::Or(args) => short_circuit(args, scope, true),
        Node::Iterate { kind, items, rule } => iterate(*kind, &evaluate(items, scope), rule),
        Node::Reduce {
            items,
            rule,
            initial,
        } => {
            let Value::Array(items) = &*evaluate(items, scope) else {
                return Cow::Borrowed(initial);
            };
            let mut accumulator = initial.clone();
            for item in items {
                let data = serde_json::json!({ "current": item, "accumulator": accumulator });
                accumulator = evaluate(rule, &Scope::Item(&data)).into_owned();
            }
            Cow::Owned(accumulator)
        }
        Node::Call { op, args } => operators::apply(*op, args, scope),
    }
}

fn variable<'a>(path: &VarPath, default: Option<&'a Node>, scope: &Scope<'a>) -> Cow<'a, Value> {
    match scope.lookup(path) {
        Some(value) => value,
        None => default.map_or(Cow::Borrowed(&NULL), |default| evaluate(default, scope)),
    }
}

/// `if` / `?:`: condition, then-branch pairs, and an optional else-branch.
fn choose<'a>(args: &'a [Node], scope: &Scope<'a>) -> Cow<'a, Value> {
    let mut index = 0;
    while index + 1 < args.len() {
        if truthy(&evaluate(&args[index], scope)) {
            return evaluate(&args[index + 1], scope);
        }
        index += 2;
    }
    args.get(index)
        .map_or(Cow::Borrowed(&NULL), |otherwise| evaluate(otherwise, scope))
}

/// `and` returns the first falsy value (or the last), `or` the first truthy one (or the last).
fn short_circuit<'a>(args: &'a [Node], scope: &Scope<'a>, stop_when: bool) -> Cow<'a, Value> {
    let mut current = Cow::Borrowed(&NULL);
    for arg in args {
        current = evaluate(arg, scope);
        if truthy(&current) == stop_when {
            break;
        }
    }
    current
}

fn iterate<'a>(kind: Iteration, items: &Value, rule: &'a Node) -> Cow<'a, Value> {
    let list = match items {
        Value::Array(list) => list.as_slice(),
        _ => {
            return Cow::Owned(match kind {
                Iteration::Map | Iteration::Filter => Value::Array(Vec::new()),
                Iteration::All | Iteration::Some => Value::Bool(false),
                Iteration::None => Value::Bool(true),
            });
        }
    };
    let passes = |item: &Value| truthy(&evaluate(rule, &Scope::Item(item)));
    Cow::Owned(match kind {
        Iteration::Map => Value::Array(
            list.iter()
                .map(|item| evaluate(rule, &Scope::Item(item)).into_owned())
                .collect(),
        ),
        Iteration::Filter => {
            Value::Array(list.iter().filter(|item| passes(item)).cloned().collect())
        }
        // JSONLogic: `all` of an empty list is false.
        Iteration::All => Value::Bool(!list.is_empty() && list.iter().all(passes)),
        Iteration::Some => Value::Bool(list.iter().any(passes)),
        Iteration::None => Value::Bool(!list.iter().any(passes)),
    })
}
