//! Registered classes that produce plain values or stored callables: numpy's RandomState
//! constructors, `functools.partial`, and C/stdlib value types (`Fraction`, `Decimal`,
//! `datetime`). Each is kept as an inert object of a registered class whose `__setstate__` the
//! machine models ([`setstate_is_plain`]).

use super::{is_plain, reject, unmodelled, Interp};
use crate::error::Result;
use crate::pickle::value::{CallKind, ClassKnowledge, Graph, Node, NodeId, Object};
use crate::policy::registry::Kind;

/// The bit generators `numpy.random._pickle.BitGenerators` names.
const BIT_GENERATORS: &[&str] = &["MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64"];

fn registered_object(
    g: &mut Graph,
    callable: NodeId,
    args: &[NodeId],
    kind: Kind,
) -> Result<Interp> {
    let o = Object::new(
        callable,
        args.to_vec(),
        None,
        CallKind::Reduce,
        ClassKnowledge::Registered(kind),
    );
    Ok(Interp::Value(g.add(Node::Object(Box::new(o)))?))
}

/// `__RandomState_ctor()` / `__randomstate_ctor(name)`.
pub fn random_state(g: &mut Graph, callable: NodeId, args: &[NodeId]) -> Result<Interp> {
    match args {
        [] => registered_object(g, callable, args, Kind::NumpyRandomState),
        [name] if g.as_str(*name).is_some_and(|n| BIT_GENERATORS.contains(&n)) => {
            registered_object(g, callable, args, Kind::NumpyRandomState)
        }
        _ => reject(
            g,
            args,
            "numpy RandomState constructor",
            "not () or (known bit generator name,)",
        ),
    }
}

/// `functools.partial(func, *args)`: stores `func` (a named global, graded as a reference)
/// and plain arguments.
pub fn partial(g: &mut Graph, callable: NodeId, args: &[NodeId]) -> Result<Interp> {
    let Some((&func, rest)) = args.split_first() else {
        return reject(g, args, "functools.partial", "no function");
    };
    if !matches!(g.get(func), Node::Global(_)) || !rest.iter().all(|&a| is_plain(g, a)) {
        return unmodelled(
            "functools.partial of a computed value or with arguments that are not plain data",
        );
    }
    registered_object(g, callable, args, Kind::FunctoolsPartial)
}

/// `Fraction(...)`, `Decimal(...)`, `datetime(...)`: plain scalars (or other such values).
pub fn plain_value(g: &mut Graph, callable: NodeId, args: &[NodeId]) -> Result<Interp> {
    let ok = |id: NodeId| match g.get(id) {
        Node::Object(o) => o.class == ClassKnowledge::Registered(Kind::PlainValue),
        Node::Tuple(v) => v
            .iter()
            .all(|&i| matches!(g.get(i), Node::Int(_) | Node::Bool(_))),
        Node::None
        | Node::Bool(_)
        | Node::Int(_)
        | Node::BigInt(_)
        | Node::Float(_)
        | Node::Str(_)
        | Node::Bytes(_) => true,
        _ => false,
    };
    if !args.iter().all(|&a| ok(a)) {
        return reject(
            g,
            args,
            "a value constructor",
            "arguments that are not plain scalars",
        );
    }
    // Fraction("1e1000000000") computes 10**1000000000 while loading; what Fraction pickles is
    // "numerator/denominator", never an exponent.
    if args.iter().any(|&a| {
        g.as_str(a)
            .is_some_and(|s| s.len() > 4096 || s.contains(['e', 'E']))
    }) {
        return unmodelled(
            "a number written with an exponent or thousands of digits (parsing it can take unbounded time)",
        );
    }
    registered_object(g, callable, args, Kind::PlainValue)
}

/// Whether a registered class's own `__setstate__` (RandomState, partial) receives only plain
/// data (a partial's function may be a named global: storing it calls nothing).
pub fn setstate_is_plain(g: &Graph, kind: Kind, state: NodeId) -> bool {
    match kind {
        Kind::FunctoolsPartial => match g.as_seq(state) {
            Some([func, rest @ ..]) => {
                matches!(g.get(*func), Node::Global(_)) && rest.iter().all(|&a| is_plain(g, a))
            }
            _ => false,
        },
        _ => is_plain(g, state),
    }
}

/// Registered kinds whose class defines `__setstate__` (the machine models it).
pub fn has_setstate(kind: Kind) -> bool {
    matches!(kind, Kind::NumpyRandomState | Kind::FunctoolsPartial)
}
