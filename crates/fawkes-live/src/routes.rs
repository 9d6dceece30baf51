//! Which live view serves which path.

use std::sync::Arc;

use crate::params::Params;
use crate::view::LiveView;

type Factory<S> = Arc<dyn Fn() -> Box<dyn LiveView<S>> + Send + Sync>;

/// Path patterns (`/rooms/{slug}`) and the view each one makes.
pub struct LiveRoutes<S> {
    router: matchit::Router<(Arc<str>, Factory<S>)>,
}

/// A path matched to its route.
pub(crate) struct Matched<S> {
    /// The pattern: two URLs with the same pattern are the same view (a patch, not a navigation).
    pub pattern: Arc<str>,
    pub view: Box<dyn LiveView<S>>,
    pub params: Params,
}

impl<S: Send + Sync + 'static> Default for LiveRoutes<S> {
    fn default() -> Self {
        Self {
            router: matchit::Router::new(),
        }
    }
}

impl<S: Send + Sync + 'static> LiveRoutes<S> {
    /// Serves `pattern` with views made by `make`.
    ///
    /// # Panics
    /// On a pattern that is invalid or overlaps one already added: a programming error found at
    /// start-up, never from input.
    pub fn live<V, F>(mut self, pattern: &str, make: F) -> Self
    where
        V: LiveView<S>,
        F: Fn() -> V + Send + Sync + 'static,
    {
        let factory: Factory<S> = Arc::new(move || Box::new(make()));
        if let Err(error) = self.router.insert(pattern, (Arc::from(pattern), factory)) {
            panic!("live route {pattern}: {error}");
        }
        self
    }

    /// The view for `uri` (path and optional query).
    pub(crate) fn find(&self, uri: &str) -> Option<Matched<S>> {
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        let matched = self.router.at(path).ok()?;
        let (pattern, factory) = matched.value;
        let mut params = Params::from_urlencoded(query);
        for (key, value) in matched.params.iter() {
            params.insert(key, value);
        }
        Some(Matched {
            pattern: pattern.clone(),
            view: factory(),
            params,
        })
    }

    pub(crate) fn pattern_of(&self, uri: &str) -> Option<(Arc<str>, Params)> {
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        let matched = self.router.at(path).ok()?;
        let mut params = Params::from_urlencoded(query);
        for (key, value) in matched.params.iter() {
            params.insert(key, value);
        }
        Some((matched.value.0.clone(), params))
    }
}

/// The path and query of a URL the client sent (`http://host/path?q` → `/path?q`).
pub(crate) fn local_uri(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let local = rest.find('/').map_or("/", |at| &rest[at..]);
    let local = local.split('#').next().unwrap_or("/");
    Some(local.to_owned())
}
