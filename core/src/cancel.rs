//! How long work lets its caller stop it: the engine's loops (weight matching, REPAIR) and the
//! experiments built on them ask [`Cancel::is_cancelled`] between steps and call
//! [`Cancel::pause`] after each. It sits below both, so that the engine does not depend on the
//! experiments; what an experiment reports on the way is `experiment::Observer`, which extends
//! it with the experiments' events.

/// Asked between steps whether to stop; given the thread back after each step.
pub trait Cancel {
    fn is_cancelled(&self) -> bool {
        false
    }
    /// Called after every training step, alignment step and path point: in the page's worker it
    /// hands the thread back to the event loop now and then, so that a Cancel posted by the page
    /// is seen; natively (a thread of its own, cancelled through an atomic) there is nothing to
    /// wait for.
    fn pause(&mut self) -> Pause<'_> {
        Box::pin(std::future::ready(()))
    }
}

/// What [`Cancel::pause`] returns.
pub type Pause<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>;

/// Never cancels, never waits; as an experiment's observer (`experiment::Observer`) it ignores
/// every event.
pub struct Silent;
impl Cancel for Silent {}
