//! Execution: walks a [`Plan`]'s steps, handing each kernel its inputs and freeing every value
//! at its last read. No choice is made here.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::prelude::Device;
use featx_graph::Graph;

use crate::plan::Plan;
use crate::{ExtractError, Feature, Result};

/// What a run of a plan produced, by request position (`None` for one no step produced, which
/// a correct plan never leaves).
pub(crate) struct Executed {
    /// The requested values.
    pub values: Vec<Option<Feature>>,
    /// For a plan with gradients, the probe added to each requested value (see
    /// [`Feature::gradient_probe`]); empty otherwise.
    pub probes: Vec<Option<Feature>>,
}

/// Runs `plan` on the graph input `input` for `requested` positions. `shapes` are every
/// node's inferred output shapes for this input.
///
/// The walk runs on a thread of the rayon pool the CPU kernels and burn-flex share: a parallel
/// op then splits its work from inside the pool, the other workers stealing their share, rather
/// than being injected from outside while the calling thread sleeps on a latch (a wake-up on
/// the way in and another on the way out of every op). On the CPU the other workers also stay
/// awake for the run (see [`keep_awake`]). Other devices lose one hand-off per run.
pub(crate) fn execute(
    plan: &Plan,
    graph: &Graph,
    input: Feature,
    shapes: &[Vec<usize>],
    requested: usize,
) -> Result<Executed> {
    let on_cpu = input.device() == Device::flex();
    let done = &AtomicBool::new(false);
    rayon::scope(|scope| {
        if on_cpu {
            for _ in 1..rayon::current_num_threads() {
                scope.spawn(move |_| keep_awake(done));
            }
        }
        let _walking = Walking::start(done);
        walk(plan, graph, input, shapes, requested)
    })
}

/// Marks this thread as walking until dropped, then lets the awake workers go, on the way out
/// of a panic too (the scope waits for them before it unwinds).
struct Walking<'a> {
    outer: bool,
    done: &'a AtomicBool,
}

impl<'a> Walking<'a> {
    fn start(done: &'a AtomicBool) -> Self {
        Walking {
            outer: WALKING.replace(true),
            done,
        }
    }
}

impl Drop for Walking<'_> {
    fn drop(&mut self) {
        WALKING.set(self.outer);
        self.done.store(true, Ordering::Release);
    }
}

thread_local! {
    /// Whether a walk is under way lower on this thread's stack.
    static WALKING: Cell<bool> = const { Cell::new(false) };
}

/// Keeps a pool worker looking for work until `done`, instead of going to sleep between ops.
///
/// Between two parallel ops the walk runs serial code (a small op, an allocation) for longer
/// than rayon's workers spin before they sleep on a futex, and every parallel op then paid a
/// wake-up system call before its work could split: a sixth of MobileNetV3-Large's CPU time at
/// batch 1 went to putting threads to sleep and waking them. A worker in this loop steals each
/// op's share as soon as it is pushed, as the intra-op spinning of other runtimes does, and
/// only for the length of a run. A thread with a walk of its own lower on its stack (the
/// walker, waiting inside an op; another run's walker, with runs on several threads) returns
/// at once instead: it would wait on a walk while holding up its own, and two such waits
/// could hold each other up for ever.
fn keep_awake(done: &AtomicBool) {
    if WALKING.get() {
        return;
    }
    while !done.load(Ordering::Acquire) {
        if let Some(rayon::Yield::Idle) | None = rayon::yield_now() {
            std::hint::spin_loop();
        }
    }
}

/// [`execute`] on the current thread.
fn walk(
    plan: &Plan,
    graph: &Graph,
    input: Feature,
    shapes: &[Vec<usize>],
    requested: usize,
) -> Result<Executed> {
    let nodes = graph.nodes();
    let internal = |node: usize, reason: String| ExtractError::Internal {
        node: nodes[node].name.clone(),
        reason,
    };
    let mut slots: Vec<Option<Feature>> = vec![None; nodes.len()];
    let mut results: Vec<Option<Feature>> = vec![None; requested];
    let mut probes: Vec<Option<Feature>> = vec![None; if plan.gradients { requested } else { 0 }];
    let mut input = Some(input);
    for step in &plan.steps {
        let id = step.node.0;
        let args = if matches!(nodes[id].op, featx_graph::Op::Input(_)) {
            let x = input.take();
            vec![x.ok_or_else(|| internal(id, "more than one graph input".into()))?]
        } else {
            step.reads
                .iter()
                .map(|read| {
                    let slot = &mut slots[read.node.0];
                    let value = if read.last { slot.take() } else { slot.clone() };
                    value.ok_or_else(|| {
                        internal(id, format!("{} has no value", nodes[read.node.0].name))
                    })
                })
                .collect::<Result<Vec<_>>>()?
        };
        let mut value = step
            .kernel
            .run(args, &shapes[id])
            .map_err(|reason| internal(id, format!("{} kernel: {reason}", step.kernel.name())))?;
        if plan.gradients && !step.outputs.is_empty() {
            // Everything downstream reads `value + probe`, so the probe's gradient is the
            // value's total gradient, through every later use.
            let probe = value.gradient_probe();
            value = value
                .checked_add(probe.clone())
                .ok_or_else(|| internal(id, "a probe of another shape".into()))?;
            for &pos in &step.outputs {
                probes[pos] = Some(probe.clone());
            }
        }
        for &pos in &step.outputs {
            results[pos] = Some(value.clone());
        }
        if step.keep {
            slots[id] = Some(value);
        }
    }
    Ok(Executed {
        values: results,
        probes,
    })
}
