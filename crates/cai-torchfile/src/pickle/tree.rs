//! Turns the arena into an owned [`Value`] tree, bounding depth and the expansion of
//! shared references (a memo can make a small pickle describe an exponential tree).

use super::machine::{Id, Node};
use super::Limits;
use crate::error::TorchError;
use crate::value::{Object, Value};

struct Builder<'a> {
    nodes: &'a [Node],
    limits: &'a Limits,
    emitted: usize,
}

/// Builds the value rooted at `root`.
pub(super) fn materialise(nodes: &[Node], root: Id, limits: &Limits) -> Result<Value, TorchError> {
    let mut b = Builder {
        nodes,
        limits,
        emitted: 0,
    };
    b.build(root, 0)
}

impl Builder<'_> {
    fn err(&self, msg: String) -> TorchError {
        TorchError::Pickle { offset: 0, msg }
    }

    fn build(&mut self, id: Id, depth: usize) -> Result<Value, TorchError> {
        if depth > self.limits.max_depth {
            return Err(self.err(format!(
                "values nested deeper than {} levels (or a reference cycle)",
                self.limits.max_depth
            )));
        }
        self.emitted += 1;
        if self.emitted > self.limits.max_expanded {
            return Err(self.err(format!(
                "shared references expand to more than {} values",
                self.limits.max_expanded
            )));
        }
        let d = depth + 1;
        Ok(match &self.nodes[id] {
            Node::None => Value::None,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => Value::Int(*i),
            Node::BigInt(b) => Value::BigInt(b.clone()),
            Node::Float(f) => Value::Float(*f),
            Node::Str(s) => Value::Str(s.clone()),
            Node::Bytes(b) => Value::Bytes(b.clone()),
            Node::Tuple(v) => Value::Tuple(self.seq(v, d)?),
            Node::List(v) => Value::List(self.seq(v, d)?),
            Node::Set(v) => Value::Set(self.seq(v, d)?),
            Node::Dict(p) => Value::Dict(self.pairs(p, d)?),
            Node::Global(g) => Value::Global(g.clone()),
            Node::Tensor(t) => Value::Tensor(t.clone()),
            Node::Storage(s) => Value::Storage(s.clone()),
            Node::Object {
                class,
                args,
                state,
                list_items,
                dict_items,
            } => {
                let state = match state {
                    Some(s) => Some(self.build(*s, d)?),
                    None => None,
                };
                Value::Object(Box::new(Object {
                    class: class.clone(),
                    args: self.seq(args, d)?,
                    state,
                    list_items: self.seq(list_items, d)?,
                    dict_items: self.pairs(dict_items, d)?,
                }))
            }
        })
    }

    fn seq(&mut self, ids: &[Id], depth: usize) -> Result<Vec<Value>, TorchError> {
        ids.iter().map(|&i| self.build(i, depth)).collect()
    }

    fn pairs(&mut self, p: &[(Id, Id)], depth: usize) -> Result<Vec<(Value, Value)>, TorchError> {
        p.iter()
            .map(|&(k, v)| Ok((self.build(k, depth)?, self.build(v, depth)?)))
            .collect()
    }
}
