//! The content-addressed DAG: [`Vertex`]es named by the digest of their
//! definition, and the closure of a target in dependency order.

use std::collections::BTreeMap;

use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;

use crate::Digest;

/// One step of a build: an operation, the vertices it reads from, a display name.
#[derive(Debug, Clone)]
pub struct Vertex<O> {
    /// sha256 of the canonical encoding of `op` and `inputs` (see [`Graph::add`]).
    pub digest: Digest,
    /// What to do. Part of the digest.
    pub op: O,
    /// Digests of the vertices whose results this one reads, in the order the
    /// executor receives them. Part of the digest.
    pub inputs: Vec<Digest>,
    /// How progress names this step, e.g. `[build 2/4] RUN make`. Not part of the digest.
    pub name: String,
}

/// A graph that cannot be solved.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// A vertex (an input, or the target) that was never added.
    #[error("vertex {0} is not in the graph")]
    Missing(Digest),
    /// The operation's canonical JSON failed (a map with non-string keys, …).
    #[error("the operation of a vertex cannot be encoded")]
    Encode(#[source] serde_json::Error),
}

/// A content-addressed DAG of build steps. Vertices can only point at vertices
/// added before them, so the graph is acyclic by construction.
#[derive(Debug, Clone)]
pub struct Graph<O> {
    vertices: BTreeMap<Digest, Vertex<O>>,
}

impl<O> Default for Graph<O> {
    fn default() -> Self {
        Self { vertices: BTreeMap::new() }
    }
}

#[derive(Serialize)]
struct Canonical<'a, O> {
    op: &'a O,
    inputs: &'a [Digest],
}

impl<O: Serialize> Graph<O> {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a vertex and return its digest. Adding an equal vertex again returns the
    /// same digest and keeps the first name.
    ///
    /// The canonical encoding is the JSON of `{op, inputs}`: serde emits struct
    /// fields in declaration order, and ops must use ordered maps, so the bytes
    /// depend only on the definition.
    pub fn add(&mut self, op: O, inputs: Vec<Digest>, name: impl Into<String>) -> Result<Digest, GraphError> {
        if let Some(missing) = inputs.iter().find(|d| !self.vertices.contains_key(*d)) {
            return Err(GraphError::Missing(missing.clone()));
        }
        let bytes = serde_json::to_vec(&Canonical { op: &op, inputs: &inputs }).map_err(GraphError::Encode)?;
        let digest = Digest::of(&bytes);
        self.vertices.entry(digest.clone()).or_insert_with(|| Vertex {
            digest: digest.clone(),
            op,
            inputs,
            name: name.into(),
        });
        Ok(digest)
    }
}

impl<O> Graph<O> {
    /// The vertex with this digest.
    pub fn get(&self, digest: &Digest) -> Option<&Vertex<O>> {
        self.vertices.get(digest)
    }

    /// Number of vertices.
    pub fn len(&self) -> usize {
        self.vertices.len()
    }

    /// Whether the graph has no vertex.
    pub fn is_empty(&self) -> bool {
        self.vertices.is_empty()
    }

    /// The vertices `target` needs, itself included, each after its inputs.
    pub fn closure(&self, target: &Digest) -> Result<Vec<&Vertex<O>>, GraphError> {
        let mut dag = DiGraph::<&Digest, ()>::new();
        let mut nodes: BTreeMap<&Digest, NodeIndex> = BTreeMap::new();
        let mut stack = vec![target];
        while let Some(d) = stack.pop() {
            if nodes.contains_key(d) {
                continue;
            }
            let v = self.vertices.get(d).ok_or_else(|| GraphError::Missing(d.clone()))?;
            nodes.insert(d, dag.add_node(d));
            stack.extend(v.inputs.iter());
        }
        for (d, &n) in &nodes {
            for input in &self.vertices[*d].inputs {
                dag.update_edge(nodes[input], n, ());
            }
        }
        // Acyclic by construction (see the type's doc), so this cannot fail.
        let order = petgraph::algo::toposort(&dag, None).unwrap_or_default();
        Ok(order.into_iter().map(|n| &self.vertices[dag[n]]).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_steps_are_one_vertex_and_names_do_not_count() {
        let mut g = Graph::new();
        let a = g.add("base", vec![], "a").unwrap();
        let b1 = g.add("run", vec![a.clone()], "[one 2/2] RUN x").unwrap();
        let b2 = g.add("run", vec![a.clone()], "[two 2/2] RUN x").unwrap();
        assert_eq!(b1, b2);
        assert_eq!(g.len(), 2);
        assert_eq!(g.get(&b1).unwrap().name, "[one 2/2] RUN x");
        let c = g.add("run", vec![b1.clone()], "c").unwrap();
        assert_ne!(c, b1, "inputs are part of the digest");
    }

    #[test]
    fn closure_orders_inputs_first_and_skips_unneeded_vertices() {
        let mut g = Graph::new();
        let a = g.add("a", vec![], "a").unwrap();
        let b = g.add("b", vec![a.clone()], "b").unwrap();
        let c = g.add("c", vec![a.clone()], "c").unwrap();
        let d = g.add("d", vec![b.clone(), c.clone()], "d").unwrap();
        let _unused = g.add("e", vec![a.clone()], "e").unwrap();
        let order: Vec<_> = g.closure(&d).unwrap().iter().map(|v| v.digest.clone()).collect();
        assert_eq!(order.len(), 4);
        let pos = |x: &Digest| order.iter().position(|y| y == x).unwrap();
        assert!(pos(&a) < pos(&b) && pos(&a) < pos(&c) && pos(&b) < pos(&d) && pos(&c) < pos(&d));
    }

    #[test]
    fn unknown_inputs_are_refused() {
        let mut g: Graph<&str> = Graph::new();
        assert!(matches!(g.add("x", vec![Digest::of(b"nope")], "x"), Err(GraphError::Missing(_))));
    }
}
