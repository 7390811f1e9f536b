//! Turning a targeting rule (JSON) into a tree of nodes once, when a flag is loaded.
//!
//! Compiling resolves `$ref`s to the flag set's `$evaluators`, splits `var` paths, folds `$flagd.flagKey`
//! into a constant (a rule is compiled per flag) and rejects what can never evaluate (unknown operators,
//! missing or cyclic `$ref`s). Everything else — wrong argument counts or types — is left to evaluation,
//! where flagd's operators answer `null`, which serves the default variant.

use std::collections::BTreeMap;

use serde_json::Value;

use super::RuleError;
use super::var::VarPath;

/// Deeper rules than this are refused: evaluation recurses once per level.
const MAX_DEPTH: usize = 256;

#[derive(Debug, Clone)]
pub enum Node {
    Literal(Value),
    /// An array with operations inside; evaluates to the array of their results.
    Array(Vec<Node>),
    Var {
        path: VarPath,
        default: Option<Box<Node>>,
    },
    /// `var` whose path is computed.
    DynamicVar {
        key: Box<Node>,
        default: Option<Box<Node>>,
    },
    If(Vec<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    /// `map`, `filter`, `all`, `some`, `none`: a sub-rule applied to each item of an array.
    Iterate {
        kind: Iteration,
        items: Box<Node>,
        rule: Box<Node>,
    },
    Reduce {
        items: Box<Node>,
        rule: Box<Node>,
        initial: Value,
    },
    /// Every other operator: its arguments are evaluated first, then it is applied.
    Call {
        op: Operator,
        args: Vec<Node>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iteration {
    Map,
    Filter,
    All,
    Some,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equal,
    NotEqual,
    StrictEqual,
    StrictNotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Not,
    Truthy,
    Add,
    Subtract,
    Multiply,
    Divide,
    Remainder,
    Min,
    Max,
    In,
    Cat,
    Substr,
    Merge,
    Missing,
    MissingSome,
    /// `log` is kept for compatibility but does nothing: evaluation has no IO.
    Log,
    Fractional,
    SemVer,
    StartsWith,
    EndsWith,
}

impl Operator {
    fn named(name: &str) -> Option<Operator> {
        use Operator::*;
        Some(match name {
            "==" => Equal,
            "!=" => NotEqual,
            "===" => StrictEqual,
            "!==" => StrictNotEqual,
            "<" => Less,
            "<=" => LessOrEqual,
            ">" => Greater,
            ">=" => GreaterOrEqual,
            "!" => Not,
            "!!" => Truthy,
            "+" => Add,
            "-" => Subtract,
            "*" => Multiply,
            "/" => Divide,
            "%" => Remainder,
            "min" => Min,
            "max" => Max,
            "in" => In,
            "cat" => Cat,
            "substr" => Substr,
            "merge" => Merge,
            "missing" => Missing,
            "missing_some" => MissingSome,
            "log" => Log,
            "fractional" => Fractional,
            "sem_ver" => SemVer,
            "starts_with" => StartsWith,
            "ends_with" => EndsWith,
            _ => return None,
        })
    }
}

pub struct Compiler<'a> {
    pub flag_key: &'a str,
    pub evaluators: &'a BTreeMap<String, Value>,
    /// The `$ref`s being expanded, to catch cycles.
    expanding: Vec<&'a str>,
}

impl<'a> Compiler<'a> {
    pub fn new(flag_key: &'a str, evaluators: &'a BTreeMap<String, Value>) -> Self {
        Compiler {
            flag_key,
            evaluators,
            expanding: Vec::new(),
        }
    }

    pub fn compile(&mut self, rule: &'a Value, depth: usize) -> Result<Node, RuleError> {
        if depth > MAX_DEPTH {
            return Err(RuleError::TooDeep);
        }
        match rule {
            Value::Array(items) => {
                let nodes = items
                    .iter()
                    .map(|item| self.compile(item, depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(constant_array(nodes))
            }
            // Only a single-key object is an operation; any other object is a value, as in JSONLogic.
            Value::Object(map) if map.len() == 1 => {
                let (name, args) = map.iter().next().expect("one entry");
                self.operation(name, args, depth)
            }
            _ => Ok(Node::Literal(rule.clone())),
        }
    }

    fn operation(
        &mut self,
        name: &'a str,
        args: &'a Value,
        depth: usize,
    ) -> Result<Node, RuleError> {
        if name == "$ref" {
            return self.reference(args, depth);
        }
        let args: &'a [Value] = match args {
            Value::Array(items) => items,
            single => std::slice::from_ref(single),
        };
        let mut compile_all = |args: &'a [Value]| -> Result<Vec<Node>, RuleError> {
            args.iter()
                .map(|arg| self.compile(arg, depth + 1))
                .collect()
        };
        Ok(match name {
            "var" => self.var(args, depth)?,
            "if" | "?:" => Node::If(compile_all(args)?),
            "and" => Node::And(compile_all(args)?),
            "or" => Node::Or(compile_all(args)?),
            "map" | "filter" | "all" | "some" | "none" => {
                let kind = match name {
                    "map" => Iteration::Map,
                    "filter" => Iteration::Filter,
                    "all" => Iteration::All,
                    "some" => Iteration::Some,
                    _ => Iteration::None,
                };
                let items = self.optional(args.first(), depth)?;
                let rule = self.optional(args.get(1), depth)?;
                Node::Iterate {
                    kind,
                    items: Box::new(items),
                    rule: Box::new(rule),
                }
            }
            "reduce" => Node::Reduce {
                items: Box::new(self.optional(args.first(), depth)?),
                rule: Box::new(self.optional(args.get(1), depth)?),
                // The reference evaluator takes the initial value as written, without evaluating it.
                initial: args.get(2).cloned().unwrap_or(Value::Null),
            },
            _ => match Operator::named(name) {
                Some(op) => Node::Call {
                    op,
                    args: compile_all(args)?,
                },
                None => return Err(RuleError::UnknownOperator(name.to_string())),
            },
        })
    }

    fn optional(&mut self, arg: Option<&'a Value>, depth: usize) -> Result<Node, RuleError> {
        match arg {
            Some(arg) => self.compile(arg, depth + 1),
            None => Ok(Node::Literal(Value::Null)),
        }
    }

    fn var(&mut self, args: &'a [Value], depth: usize) -> Result<Node, RuleError> {
        let default = match args.get(1) {
            Some(default) => Some(Box::new(self.compile(default, depth + 1)?)),
            None => None,
        };
        let key = self.optional(args.first(), depth)?;
        Ok(match key {
            Node::Literal(key) => match VarPath::parse(&key) {
                // The flag key is known now: no need to look it up on every evaluation.
                VarPath::FlagKey => Node::Literal(Value::String(self.flag_key.to_string())),
                path => Node::Var { path, default },
            },
            key => Node::DynamicVar {
                key: Box::new(key),
                default,
            },
        })
    }

    fn reference(&mut self, name: &'a Value, depth: usize) -> Result<Node, RuleError> {
        let Value::String(name) = name else {
            return Err(RuleError::InvalidReference(name.to_string()));
        };
        let Some(rule) = self.evaluators.get(name.as_str()) else {
            return Err(RuleError::UnknownEvaluator(name.clone()));
        };
        if self.expanding.contains(&name.as_str()) {
            return Err(RuleError::CyclicEvaluator(name.clone()));
        }
        self.expanding.push(name);
        let node = self.compile(rule, depth + 1);
        self.expanding.pop();
        node
    }
}

/// An array whose items are all constants is itself a constant, so evaluating it copies nothing.
fn constant_array(nodes: Vec<Node>) -> Node {
    if nodes.iter().all(|node| matches!(node, Node::Literal(_))) {
        let values = nodes
            .into_iter()
            .map(|node| match node {
                Node::Literal(value) => value,
                _ => unreachable!("checked above"),
            })
            .collect();
        Node::Literal(Value::Array(values))
    } else {
        Node::Array(nodes)
    }
}
