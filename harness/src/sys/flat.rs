//! Trees on the wire as flat lists, so that no shape of tree can hit a
//! decoder's nesting limit.
//!
//! `serde_json` refuses documents nested deeper than 128 levels (its guard
//! against stack overflow), and a [`Node`] serialized as itself nests two
//! levels per generation: a chain of 61 processes was already too deep.
//! The runner and the helper therefore send a tree as its nodes in
//! preorder, each with the index of its parent (always an earlier entry),
//! and neither flattening nor rebuilding recurses.

#![forbid(unsafe_code)]

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::scenario::{Attrs, Markers, Name, Node};

/// One node of a flattened forest.
#[derive(Serialize, Deserialize)]
struct Entry {
    /// Index of its parent in the list (`None`: a root).
    up: Option<usize>,
    name: Name,
    #[serde(default, skip_serializing_if = "is_default")]
    attrs: Attrs,
    #[serde(default, skip_serializing_if = "is_default")]
    markers: Markers,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn flatten(forest: &[Node]) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut stack: Vec<(Option<usize>, &Node)> = forest.iter().rev().map(|n| (None, n)).collect();
    while let Some((up, n)) = stack.pop() {
        let me = out.len();
        out.push(Entry { up, name: n.name.clone(), attrs: n.attrs.clone(), markers: n.markers.clone() });
        stack.extend(n.children.iter().rev().map(|c| (Some(me), c)));
    }
    out
}

fn rebuild(entries: Vec<Entry>) -> Result<Vec<Node>, String> {
    let ups: Vec<Option<usize>> = entries.iter().map(|e| e.up).collect();
    for (i, up) in ups.iter().enumerate() {
        if let Some(p) = up {
            if *p >= i {
                return Err(format!("entry {i} names parent {p}, which does not come before it"));
            }
        }
    }
    let mut nodes: Vec<Option<Node>> = entries
        .into_iter()
        .map(|e| Some(Node { name: e.name, attrs: e.attrs, markers: e.markers, children: Vec::new() }))
        .collect();
    let mut roots = Vec::new();
    // Last to first: every child is complete before it joins its parent,
    // and joins in reverse order, put right when the parent is complete.
    for i in (0..nodes.len()).rev() {
        let mut n = nodes[i].take().expect("each entry is taken once");
        n.children.reverse();
        match ups[i] {
            Some(p) => nodes[p].as_mut().expect("a parent comes before its children").children.push(n),
            None => roots.push(n),
        }
    }
    roots.reverse();
    Ok(roots)
}

/// `#[serde(with = "flat::forest")]` for a `Vec<Node>`.
pub mod forest {
    use super::*;

    pub fn serialize<S: Serializer>(forest: &[Node], s: S) -> Result<S::Ok, S::Error> {
        flatten(forest).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Node>, D::Error> {
        rebuild(Vec::<Entry>::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "flat::tree")]` for one `Node`.
pub mod tree {
    use super::*;

    pub fn serialize<S: Serializer>(tree: &Node, s: S) -> Result<S::Ok, S::Error> {
        flatten(std::slice::from_ref(tree)).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        let mut roots = rebuild(Vec::<Entry>::deserialize(d)?).map_err(serde::de::Error::custom)?;
        match roots.len() {
            1 => Ok(roots.pop().expect("one")),
            n => Err(serde::de::Error::custom(format!("a tree has one root, not {n}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Wire {
        #[serde(with = "tree")]
        tree: Node,
        #[serde(with = "forest")]
        forest: Vec<Node>,
    }

    fn chain(n: usize) -> Node {
        let mut node = Node { name: format!("l{n}"), ..Node::default() };
        for i in (0..n).rev() {
            node = Node { name: format!("l{i}"), children: vec![node], ..Node::default() };
        }
        node
    }

    #[test]
    fn any_shape_crosses_as_itself() {
        let bushy = Node {
            name: "init".into(),
            attrs: Attrs { subreaper: true, ..Attrs::default() },
            children: vec![
                Node {
                    name: "a".into(),
                    children: vec![Node { name: "b".into(), ..Node::default() }],
                    ..Node::default()
                },
                Node { name: "c".into(), markers: Markers { zombie: true, ..Markers::default() }, ..Node::default() },
            ],
            ..Node::default()
        };
        for tree in [bushy.clone(), chain(5000)] {
            let w = Wire { tree: tree.clone(), forest: vec![tree.clone(), bushy.clone()] };
            let text = serde_json::to_string(&w).unwrap();
            let back: Wire = serde_json::from_str(&text).unwrap();
            assert!(back.tree == tree && back.forest == vec![tree, bushy.clone()]);
        }
    }

    #[test]
    fn a_parent_after_its_child_is_refused() {
        let text = r#"{"tree":[{"up":1,"name":"a"},{"up":null,"name":"b"}],"forest":[]}"#;
        let e = serde_json::from_str::<Wire>(text).err().unwrap();
        assert!(e.to_string().contains("does not come before it"), "{e}");
    }
}
