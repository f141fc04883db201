//! stock (in progress).
use super::{ScenarioResult, ScenarioSettings};
pub fn run(_settings: &ScenarioSettings) -> Result<ScenarioResult, String> {
    Err("not written yet".into())
}
