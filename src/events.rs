//! Events emitted by berth's logic; renderers (terminal, plain, JSON) consume them. Logic never prints.

use std::sync::Mutex;

use crate::plan::Subject;

/// Something that happened, for a renderer to show.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A non-fatal problem the user should know about.
    Warning { message: String },
    /// A plan step began (`step` displays as `container web-1 create`).
    StepStarted { step: Subject },
    /// A plan step finished.
    StepDone { step: Subject },
    /// A plan step failed.
    StepFailed { step: Subject, error: String },
    /// A plan step was not run because a step it waits for failed.
    StepSkipped { step: Subject },
    /// A watch rule or a reload of the compose files was applied (or failed), in words:
    /// `synced 3 files in 4 ms`.
    Watch { service: String, message: String, failed: bool },
    /// A pull of `image` (a normalized reference) started.
    PullStarted { image: String },
    /// A layer download started; `layer` is the short blob digest, `size` its size in bytes.
    LayerStarted { image: String, layer: String, size: u64 },
    /// Bytes of a layer received so far (sent at most every few hundred KiB).
    LayerProgress { image: String, layer: String, current: u64, total: u64 },
    /// A layer is stored and unpacked; `cached` when nothing had to be downloaded.
    LayerDone { image: String, layer: String, cached: bool },
    /// An image is complete in the store; `downloaded` bytes came from the registry for it.
    ImagePulled { image: String, digest: String, id: String, downloaded: u64, up_to_date: bool },
    /// A push of `image` started.
    PushStarted { image: String },
    /// An image is in the registry as `image`, with manifest `digest`.
    ImagePushed { image: String, digest: String },
    /// An image was not pulled because the local copy satisfies the pull policy.
    ImageSkipped { image: String, reason: String },
    /// A build of `image` (the name it gets) started with `steps` steps to go through.
    BuildStarted { image: String, steps: usize },
    /// A build step began: `step` counts from 1 over the whole build, `stage` names the stage
    /// (`build`, or its index), `position` is the step's place in its stage (`2/4`) and
    /// `instruction` the Dockerfile line (`RUN make`).
    BuildStep { image: String, step: usize, stage: String, position: String, instruction: String },
    /// A build step finished: `cached` when its layer came from the build cache.
    BuildStepDone { image: String, step: usize, cached: bool, millis: u64 },
    /// One line a `RUN` step printed.
    BuildOutput { image: String, step: usize, line: String },
    /// An image was built and tagged `image`; `id` is its config digest, `containers` the
    /// number of `RUN` containers it took (0 when every layer came from the cache).
    ImageBuilt { image: String, id: String, steps: usize, cached: usize, containers: usize, millis: u64 },
}

/// Where events go. Implementations must be cheap and never block for long.
pub trait EventSink: Send + Sync {
    /// Receives one event.
    fn emit(&self, event: Event);
}

/// A sink that keeps every event, for tests.
#[derive(Default)]
pub struct Recorder(Mutex<Vec<Event>>);

impl Recorder {
    /// The events received so far.
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().expect("recorder lock").clone()
    }
}

impl EventSink for Recorder {
    fn emit(&self, event: Event) {
        self.0.lock().expect("recorder lock").push(event);
    }
}
