//! likes-storm: like buttons on posts whose popularity follows Zipf (a few posts get most of the clicks).
//!
//! Load: each request is LIKE.ADD for a post drawn from Zipf and one of the client's users, a LIKE.REMOVE
//! of a pair the client liked before (20%), and 15% of likes are double clicks: the same LIKE.ADD sent
//! again right after. Users are split between clients, so every (post, user) pair is driven by exactly one
//! connection and its acknowledgements arrive in the order the server applied them.
//!
//! Check (`check`): replaying each pair's acknowledgements, LIKE.ADD answers added=1 exactly when the user
//! did not like the post yet and LIKE.REMOVE answers removed=1 exactly when they did (a double click never
//! counts twice, an unlike never goes below zero); at the end every post's count equals its number of
//! distinct likers, and the server's likers (LIKE.HAS, or SMEMBERS on Redis) are exactly the users whose
//! last acknowledged action was a like.

use super::{
    call_many, evalsha, load_script, or_default, user_name, user_number, ScenarioResult,
    ScenarioSettings, Target, Verdict,
};
use crate::command;
use crate::random::{Random, Zipf};
use crate::resp::{Command, Connection, Value};
use crate::runner::{self, Worker};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Instant;

const SCRIPT: &str = include_str!("../../lua/likes.lua");

const UNLIKE_PROBABILITY: f64 = 0.2;
const DOUBLE_CLICK_PROBABILITY: f64 = 0.15;

/// One acknowledged LIKE.ADD or LIKE.REMOVE.
#[derive(Clone, Debug, PartialEq)]
pub struct LikeAck {
    pub post: u64,
    pub user: u64,
    pub add: bool,
    /// Whether the server said the set changed; None for a reply that did not decode.
    pub changed: Option<bool>,
    pub count: i64,
}

/// A post's state after the run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PostFinal {
    pub count: i64,
    /// The users the server says like the post (among the users the run touched).
    pub likers: BTreeSet<u64>,
}

/// Checks the ledger (each pair's acknowledgements in order) against every touched post's final state.
pub fn check(acks: &[LikeAck], last: &BTreeMap<u64, PostFinal>) -> Verdict {
    let mut verdict = Verdict::default();
    let mut liked: HashMap<(u64, u64), bool> = HashMap::new();
    for ack in acks {
        let action = if ack.add { "LIKE.ADD" } else { "LIKE.REMOVE" };
        let Some(changed) = ack.changed else {
            verdict.fail(format!(
                "{action} post {} user {}: bad reply",
                ack.post, ack.user
            ));
            continue;
        };
        let state = liked.entry((ack.post, ack.user)).or_default();
        let expected = ack.add != *state;
        if changed != expected {
            verdict.fail(format!(
                "{action} post {} user {} answered {} while the user {} the post",
                ack.post,
                ack.user,
                changed as u8,
                if *state {
                    "already liked"
                } else {
                    "did not like"
                }
            ));
        }
        if ack.count < 0 {
            verdict.fail(format!("post {} count went to {}", ack.post, ack.count));
        }
        *state = ack.add;
    }
    let mut expected_likers: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    for (&(post, user), &state) in &liked {
        let likers = expected_likers.entry(post).or_default();
        if state {
            likers.insert(user);
        }
    }
    for (post, likers) in &expected_likers {
        let Some(server) = last.get(post) else {
            verdict.fail(format!("no final state read for post {post}"));
            continue;
        };
        if server.count != likers.len() as i64 {
            verdict.fail(format!(
                "post {post}: count {} but {} distinct likers acknowledged",
                server.count,
                likers.len()
            ));
        }
        if server.count != server.likers.len() as i64 {
            verdict.fail(format!(
                "post {post}: count {} but the server holds {} distinct likers",
                server.count,
                server.likers.len()
            ));
        }
        if &server.likers != likers {
            let extra = server.likers.difference(likers).next();
            let missing = likers.difference(&server.likers).next();
            verdict.fail(format!(
                "post {post}: server likers differ from acknowledged ones (server-only {extra:?}, \
                 acknowledged-only {missing:?})"
            ));
        }
    }
    verdict
}

struct LikesWorker {
    target: Target,
    prefix: String,
    sha: String,
    zipf: Zipf,
    random: Random,
    /// This client's users: `client + 1 + k * clients`.
    client: u64,
    clients: u64,
    users_per_client: u64,
    liked_pairs: Vec<(u64, u64)>,
    /// Double clicks waiting to go out next.
    pending: VecDeque<(u64, u64, bool)>,
    in_flight: Vec<(u64, u64, bool)>,
    acks: Vec<LikeAck>,
}

fn post_keys(prefix: &str, post: u64) -> Vec<String> {
    let tag = format!("{{{prefix}:likes:{post}}}");
    vec![format!("{tag}:likers"), format!("{tag}:count")]
}

fn post_name(prefix: &str, post: u64) -> String {
    format!("{prefix}:post:{post}")
}

impl LikesWorker {
    fn command(&self, post: u64, user: u64, add: bool) -> Command {
        match self.target {
            Target::Dibs => {
                let name = if add { "LIKE.ADD" } else { "LIKE.REMOVE" };
                command!(name, post_name(&self.prefix, post), user_name(user))
            }
            Target::Redis => evalsha(
                &self.sha,
                &post_keys(&self.prefix, post),
                &[
                    if add { "add" } else { "remove" }.to_string(),
                    user_name(user),
                ],
            ),
        }
    }
}

impl Worker for LikesWorker {
    fn build(&mut self, count: usize, commands: &mut Vec<Command>) {
        self.in_flight.clear();
        for _ in 0..count {
            let action = self.pending.pop_front().unwrap_or_else(|| {
                if !self.liked_pairs.is_empty() && self.random.chance(UNLIKE_PROBABILITY) {
                    let index = self.random.below(self.liked_pairs.len() as u64) as usize;
                    let (post, user) = self.liked_pairs.swap_remove(index);
                    (post, user, false)
                } else {
                    let post = self.zipf.sample(&mut self.random);
                    let user =
                        self.client + 1 + self.random.below(self.users_per_client) * self.clients;
                    self.liked_pairs.push((post, user));
                    if self.random.chance(DOUBLE_CLICK_PROBABILITY) {
                        self.pending.push_back((post, user, true));
                    }
                    (post, user, true)
                }
            });
            commands.push(self.command(action.0, action.1, action.2));
            self.in_flight.push(action);
        }
    }

    fn absorb(&mut self, _commands: &[Command], replies: Vec<Value>, _sent_at: Instant) {
        for ((post, user, add), reply) in self.in_flight.drain(..).zip(replies) {
            let items = reply.array().unwrap_or(&[]);
            let changed = items.first().and_then(Value::integer);
            let count = items.get(1).and_then(Value::integer);
            let (changed, count) = match (changed, count) {
                (Some(changed @ (0 | 1)), Some(count)) => (Some(changed == 1), count),
                _ => (None, 0),
            };
            self.acks.push(LikeAck {
                post,
                user,
                add,
                changed,
                count,
            });
        }
    }
}

/// Runs likes-storm once against `settings.target`.
pub fn run(settings: &ScenarioSettings) -> Result<ScenarioResult, String> {
    let load = &settings.load;
    let clients = load.clients as u64;
    let users = or_default(settings.users, load.requests / 10).max(clients);
    let posts = settings.posts.max(1);
    let zipf = Zipf::new(posts, settings.zipf_exponent);
    let mut admin = Connection::open(&load.host, load.port)?;
    let sha = match settings.target {
        Target::Dibs => String::new(),
        Target::Redis => load_script(&mut admin, SCRIPT)?,
    };
    let workers = (0..clients)
        .map(|client| LikesWorker {
            target: settings.target,
            prefix: settings.prefix.clone(),
            sha: sha.clone(),
            zipf: zipf.clone(),
            random: Random::new(settings.seed ^ (client + 1).wrapping_mul(0xD1B5_4A32)),
            client,
            clients,
            users_per_client: users.div_ceil(clients),
            liked_pairs: Vec::new(),
            pending: VecDeque::new(),
            in_flight: Vec::new(),
            acks: Vec::new(),
        })
        .collect();
    let (workers, outcome) = runner::run(load, workers)?;
    let acks: Vec<LikeAck> = workers.into_iter().flat_map(|worker| worker.acks).collect();
    let last = read_final(&mut admin, settings, &acks)?;
    let verdict = check(&acks, &last);
    let likes: i64 = last.values().map(|post| post.count).sum();
    let hottest = last.get(&1).map(|post| post.count).unwrap_or(0);
    let detail = format!(
        "{} posts touched, {likes} likes standing, hottest post {hottest}",
        last.len()
    );
    Ok(ScenarioResult::new(
        "likes-storm",
        settings.target,
        &outcome,
        verdict,
        detail,
    ))
}

fn read_final(
    admin: &mut Connection,
    settings: &ScenarioSettings,
    acks: &[LikeAck],
) -> Result<BTreeMap<u64, PostFinal>, String> {
    let prefix = &settings.prefix;
    let posts: BTreeSet<u64> = acks.iter().map(|ack| ack.post).collect();
    let posts: Vec<u64> = posts.into_iter().collect();
    let mut last: BTreeMap<u64, PostFinal> = BTreeMap::new();
    match settings.target {
        Target::Dibs => {
            let commands: Vec<Command> = posts
                .iter()
                .map(|post| command!("LIKE.COUNT", post_name(prefix, *post)))
                .collect();
            for (post, reply) in posts.iter().zip(call_many(admin, &commands)?) {
                // LIKE.COUNT answers an array with one count per post asked.
                let count = reply
                    .array()
                    .and_then(|items| items.first())
                    .and_then(Value::integer)
                    .or_else(|| reply.integer())
                    .ok_or_else(|| format!("LIKE.COUNT answered {reply:?}"))?;
                last.entry(*post).or_default().count = count;
            }
            let pairs: BTreeSet<(u64, u64)> = acks.iter().map(|ack| (ack.post, ack.user)).collect();
            let pairs: Vec<(u64, u64)> = pairs.into_iter().collect();
            let commands: Vec<Command> = pairs
                .iter()
                .map(|(post, user)| {
                    command!("LIKE.HAS", post_name(prefix, *post), user_name(*user))
                })
                .collect();
            for ((post, user), reply) in pairs.iter().zip(call_many(admin, &commands)?) {
                if reply.integer() == Some(1) {
                    last.entry(*post).or_default().likers.insert(*user);
                }
            }
        }
        Target::Redis => {
            let mut commands = Vec::with_capacity(posts.len() * 2);
            for post in &posts {
                let keys = post_keys(prefix, *post);
                commands.push(command!("GET", keys[1]));
                commands.push(command!("SMEMBERS", keys[0]));
            }
            let replies = call_many(admin, &commands)?;
            for (post, pair) in posts.iter().zip(replies.chunks(2)) {
                let entry = last.entry(*post).or_default();
                entry.count = pair[0].integer().unwrap_or(0);
                for member in pair[1].array().unwrap_or(&[]) {
                    let user = member.text().as_deref().and_then(user_number);
                    entry
                        .likers
                        .insert(user.ok_or_else(|| format!("odd liker {member:?}"))?);
                }
            }
        }
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(post: u64, user: u64, add: bool, changed: bool, count: i64) -> LikeAck {
        LikeAck {
            post,
            user,
            add,
            changed: Some(changed),
            count,
        }
    }

    fn post(count: i64, likers: &[u64]) -> PostFinal {
        PostFinal {
            count,
            likers: likers.iter().copied().collect(),
        }
    }

    /// Post 1: users 1 and 2 like it, user 1 double-clicks; user 3 likes then unlikes. Post 2: user 1
    /// likes and unlikes twice.
    fn right_outcome() -> (Vec<LikeAck>, BTreeMap<u64, PostFinal>) {
        let acks = vec![
            ack(1, 1, true, true, 1),
            ack(1, 1, true, false, 1),
            ack(1, 2, true, true, 2),
            ack(1, 3, true, true, 3),
            ack(1, 3, false, true, 2),
            ack(2, 1, true, true, 1),
            ack(2, 1, false, true, 0),
            ack(2, 1, false, false, 0),
        ];
        let last = BTreeMap::from([(1, post(2, &[1, 2])), (2, post(0, &[]))]);
        (acks, last)
    }

    #[test]
    fn passes_a_right_outcome() {
        let (acks, last) = right_outcome();
        let verdict = check(&acks, &last);
        assert!(verdict.is_correct(), "{verdict:?}");
    }

    #[test]
    fn catches_a_double_click_counted_twice() {
        let (mut acks, mut last) = right_outcome();
        acks[1] = ack(1, 1, true, true, 2);
        last.insert(1, post(3, &[1, 2]));
        let verdict = check(&acks, &last);
        assert!(
            verdict.mentions("answered 1 while the user already liked"),
            "{verdict:?}"
        );
        assert!(
            verdict.mentions("count 3 but 2 distinct likers"),
            "{verdict:?}"
        );
    }

    #[test]
    fn catches_count_not_equal_to_distinct_likers() {
        let (acks, mut last) = right_outcome();
        last.insert(2, post(-1, &[]));
        let verdict = check(&acks, &last);
        assert!(
            verdict.mentions("post 2: count -1 but 0 distinct likers"),
            "{verdict:?}"
        );
    }

    #[test]
    fn catches_lost_likes_and_phantom_unlikes() {
        let (mut acks, mut last) = right_outcome();
        acks[7] = ack(2, 1, false, true, -1);
        last.insert(1, post(2, &[1, 3]));
        let verdict = check(&acks, &last);
        assert!(verdict.mentions("did not like"), "{verdict:?}");
        assert!(verdict.mentions("count went to -1"), "{verdict:?}");
        assert!(verdict.mentions("server likers differ"), "{verdict:?}");
    }
}
