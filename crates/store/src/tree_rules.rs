//! What may stand in an artifact's tree, as pure rules over its relative paths: where a symlink leads
//! (following the tree's other links, as the kernel would) and whether a path lies beneath a symlink.
//! Freezing applies them to the folder, and checking out applies them again to the manifest, which is
//! data read from disk rather than something to trust.

use std::collections::HashMap;

/// The kernel's limit on links followed in one lookup (`ELOOP`).
const MAX_HOPS: u32 = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkProblem {
    /// The target is an absolute path.
    Absolute,
    /// Its `..` climbs out of the tree, directly or through another link.
    Escapes,
    /// More than 40 links in a row (or a cycle): where it ends cannot be known.
    TooManyHops,
}

impl LinkProblem {
    pub fn describe(self) -> &'static str {
        match self {
            LinkProblem::Absolute => "an absolute path, outside the folder",
            LinkProblem::Escapes => "a path that climbs out of the folder",
            LinkProblem::TooManyHops => "a chain of more than 40 links (or a cycle)",
        }
    }
}

/// Where the symlink at `link` (e.g. `bin/tool`) pointing at `target` ends, as a path relative to the
/// tree's root (`""` is the root itself). `links` maps every symlink in the tree to its target.
pub fn destination<'a>(
    links: &HashMap<&str, &'a str>,
    link: &'a str,
    target: &'a str,
) -> Result<String, LinkProblem> {
    let mut at: Vec<&str> = link.split('/').filter(|p| !p.is_empty()).collect();
    at.pop();
    let mut hops = 0;
    follow(links, &mut at, target, &mut hops)?;
    Ok(at.join("/"))
}

fn follow<'a>(
    links: &HashMap<&str, &'a str>,
    at: &mut Vec<&'a str>,
    target: &'a str,
    hops: &mut u32,
) -> Result<(), LinkProblem> {
    if target.starts_with('/') {
        return Err(LinkProblem::Absolute);
    }
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                at.pop().ok_or(LinkProblem::Escapes)?;
            }
            name => {
                at.push(name);
                if let Some(next) = links.get(at.join("/").as_str()) {
                    *hops += 1;
                    if *hops > MAX_HOPS {
                        return Err(LinkProblem::TooManyHops);
                    }
                    at.pop();
                    follow(links, at, next, hops)?;
                }
            }
        }
    }
    Ok(())
}

/// The first link (by path) of `links` that does not lead inside the tree, with why.
pub fn escaping_link<'a>(
    links: &HashMap<&'a str, &'a str>,
) -> Option<(&'a str, &'a str, LinkProblem)> {
    let mut paths: Vec<&&str> = links.keys().collect();
    paths.sort();
    paths.into_iter().find_map(|&path| {
        let target = links[path];
        destination(links, path, target)
            .err()
            .map(|problem| (path, target, problem))
    })
}

/// The symlink, if any, that `path` lies beneath (`lib` for `lib/x.so` when `lib` is a link): writing
/// such a path would write wherever the link points. `is_link` says which paths are links.
pub fn link_above(path: &str, is_link: impl Fn(&str) -> bool) -> Option<&str> {
    path.match_indices('/')
        .map(|(i, _)| &path[..i])
        .find(|above| is_link(above))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn links_inside_resolve_to_their_place() {
        let links = tree(&[]);
        assert_eq!(
            destination(&links, "index", "static/index.html"),
            Ok("static/index.html".into())
        );
        assert_eq!(
            destination(&links, "bin/tool", "../lib/./tool"),
            Ok("lib/tool".into())
        );
        assert_eq!(destination(&links, "sub/up", ".."), Ok("".into()));
        assert_eq!(destination(&links, "here", "."), Ok("".into()));
    }

    #[test]
    fn links_out_of_the_tree_are_found() {
        let links = tree(&[]);
        assert_eq!(
            destination(&links, "passwd", "/etc/passwd"),
            Err(LinkProblem::Absolute)
        );
        assert_eq!(destination(&links, "up", ".."), Err(LinkProblem::Escapes));
        assert_eq!(
            destination(&links, "a/b/c", "../../../x"),
            Err(LinkProblem::Escapes)
        );
        // `..` is taken after the link it follows, as the kernel does: `sub/up` is the root, so
        // `sub/up/..` is the root's parent even though the words `sub/up/..` look like `sub`.
        let links = tree(&[("sub/up", "..")]);
        assert_eq!(
            destination(&links, "sneaky", "sub/up/../etc"),
            Err(LinkProblem::Escapes)
        );
        assert_eq!(destination(&links, "fine", "sub/up/sub"), Ok("sub".into()));
        // A chain ending outside is outside.
        let links = tree(&[("a", "b"), ("b", "/etc")]);
        assert_eq!(destination(&links, "c", "a"), Err(LinkProblem::Absolute));
    }

    #[test]
    fn cycles_do_not_hang() {
        let links = tree(&[("a", "b"), ("b", "a")]);
        assert_eq!(destination(&links, "a", "b"), Err(LinkProblem::TooManyHops));
    }

    #[test]
    fn paths_beneath_a_link_are_found() {
        let links = tree(&[("lib", "vendor/lib"), ("x/y", ".")]);
        let link_above = |path| link_above(path, |p| links.contains_key(p));
        assert_eq!(link_above("lib/a.so"), Some("lib"));
        assert_eq!(link_above("x/y/z/w"), Some("x/y"));
        assert_eq!(link_above("lib"), None, "the link itself");
        assert_eq!(link_above("library/a"), None);
        assert_eq!(link_above("x/yz"), None);
    }
}
