//! The one scheduler and the one worker loop, for every load model.
//!
//! The dispatcher decides *when*: it hands each request to a worker as a [`Ticket`] carrying
//! the request's intended send time. A closed loop gives an idle worker its next ticket at once
//! (intended = when its last response ended, or its ramp-up turn); an open loop takes intended
//! times from an arrival [`Schedule`] and gives each to an idle worker, opening a connection
//! when none is idle and the `--max-concurrency` cap allows, else queueing it. Workers decide
//! *how*: each owns one connection, sends what it is handed, and returns one record per
//! request. The cap holds exactly because the number of workers never exceeds it.
//!
//! Per request there are two channel messages (ticket out, "idle" back); nothing per event.

use super::arrivals::Schedule;
use super::plan::{Pacing, StepPlan, Stop};
use super::{LoadContext, RequestMaker};
use crate::client::{Client, ErrorClass, Phase, RequestRecord};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// After a refused connection the server is probably down: a worker that tried again at once
/// would spin, recording tens of thousands of failures a second. It waits this long first.
const PAUSE_AFTER_REFUSED: Duration = Duration::from_millis(250);

/// Connections an uncapped open loop opens before it starts: one second's worth of requests,
/// within these bounds. More are opened when every one is busy.
const OPEN_LOOP_PREOPEN: (u32, u32) = (1, 256);

/// One request to send.
#[derive(Debug, Clone, Copy)]
struct Ticket {
    /// Its place in the step's schedule (0, 1, …): a trace replay sends row k at time k.
    seq: u64,
    intended: Instant,
    phase: Phase,
    /// When the dispatcher handed it to a worker (after any wait for a free connection).
    handed: Instant,
    /// When the step stops sending: a session's later turns due after it are not sent.
    until: Option<Instant>,
}

/// A worker saying it is free: its index, from when (a closed loop's next request is due then:
/// the arrival of its last response's end, or after a pause following a refused connect), and
/// whether it gives back a measured ticket it did not send (stopped while waiting to send it).
type Idle = (usize, Instant, bool);

/// What the dispatcher saw of a step, beside the records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// Release (all connections opened ahead are ready), in seconds after the run started.
    pub released_s: f64,
    /// The measured window of a timed step, in seconds after the run started.
    pub window: Option<(f64, f64)>,
    /// Measured requests the schedule made due (sent or not).
    pub scheduled: u64,
    /// Requests that were due but never sent: dropped when the backlog limit was reached, or
    /// when the run was stopped while they waited for a connection.
    pub unsent: u64,
    /// The backlog limit was reached: the server could not sustain the rate.
    pub saturated: bool,
    /// Most requests due and not yet served at once (open loop): waiting in the client's queue,
    /// or sent and without a first token.
    pub max_backlog: u64,
    pub backlog_limit: Option<u64>,
    /// Connections (workers) the step opened.
    pub connections: u32,
    /// With a release time: how long after it the load was released (ms; 0 when on time).
    pub release_lateness_ms: Option<f64>,
    /// With a release time: the connections were not all ready by it.
    pub ready_late: bool,
}

/// Runs one step of load to its end and returns what the scheduler saw. Records go to
/// `ctx.records` as requests finish.
pub async fn run_load(ctx: &LoadContext, plan: &StepPlan, maker: Arc<RequestMaker>) -> LoadReport {
    let mut d = Dispatcher::new(ctx, plan, maker);
    d.run().await
}

struct Dispatcher<'a> {
    ctx: &'a LoadContext,
    plan: StepPlan,
    maker: Arc<RequestMaker>,
    workers: JoinSet<()>,
    senders: Vec<Option<mpsc::Sender<Ticket>>>,
    idle_tx: mpsc::UnboundedSender<Idle>,
    idle_rx: mpsc::UnboundedReceiver<Idle>,
    idle: Vec<usize>,
    /// Per worker: it has reported ready (connected) at least once.
    ready: Vec<bool>,
    /// Workers started whose first "idle" (connected) has not come yet.
    connecting: usize,
    waiting: VecDeque<Ticket>,
    /// Cancelled to cut requests in flight (drain time over, or a second Ctrl-C).
    cut: CancellationToken,
    cap: u32,
    measured_issued: u64,
    /// Tickets made so far (warm-up included): the next one's place in the schedule.
    issued: u64,
    /// No more tickets will be made.
    done_issuing: bool,
    report: LoadReport,
}

impl<'a> Dispatcher<'a> {
    fn new(ctx: &'a LoadContext, plan: &StepPlan, maker: Arc<RequestMaker>) -> Self {
        let (idle_tx, idle_rx) = mpsc::unbounded_channel();
        let cap = match &plan.pacing {
            Pacing::Closed { concurrency } => *concurrency,
            Pacing::Open { max_concurrency, .. } => max_concurrency.unwrap_or(u32::MAX),
        };
        Self {
            ctx,
            plan: plan.clone(),
            maker,
            workers: JoinSet::new(),
            senders: Vec::new(),
            idle_tx,
            idle_rx,
            idle: Vec::new(),
            ready: Vec::new(),
            connecting: 0,
            waiting: VecDeque::new(),
            cut: ctx.signals.abort.child_token(),
            cap,
            measured_issued: 0,
            issued: 0,
            done_issuing: false,
            report: LoadReport {
                backlog_limit: plan.backlog_limit(),
                ..LoadReport::default()
            },
        }
    }

    fn spawn_worker(&mut self) {
        let index = self.senders.len();
        let (tx, rx) = mpsc::channel(1);
        self.senders.push(Some(tx));
        self.ready.push(false);
        self.connecting += 1;
        let worker = Worker {
            index,
            client: Client::new(self.ctx.endpoint.clone(), self.ctx.timeouts)
                .count_unserved(self.ctx.live.unserved.clone()),
            maker: self.maker.clone(),
            point: self.plan.point(),
            run_start: self.ctx.run_start,
            live: self.ctx.live.clone(),
            records: self.ctx.records.clone(),
            cut: self.cut.clone(),
            stop: self.ctx.signals.stop.clone(),
            next: None,
        };
        let idle = self.idle_tx.clone();
        self.workers.spawn(worker.run(rx, idle));
    }

    /// A worker says it is free; the first time, it has just connected.
    fn note_idle(&mut self, worker: usize) {
        if let Some(ready) = self.ready.get_mut(worker) {
            if !*ready {
                *ready = true;
                self.connecting -= 1;
            }
        }
    }

    /// An open loop's worker is free: it takes the next queued ticket, or is returned to the
    /// caller (to wait, or to retire when no more tickets come).
    fn on_idle(&mut self, worker: usize, gave_back_measured: bool) -> Option<usize> {
        self.report.unsent += u64::from(gave_back_measured);
        self.note_idle(worker);
        match self.pop_waiting() {
            Some(ticket) => {
                self.hand(worker, ticket);
                None
            }
            None => Some(worker),
        }
    }

    /// The next queued ticket, stamped with when a connection became free for it.
    fn pop_waiting(&mut self) -> Option<Ticket> {
        let mut ticket = self.waiting.pop_front()?;
        ticket.handed = Instant::now();
        Some(ticket)
    }

    fn hand(&self, worker: usize, ticket: Ticket) {
        if let Some(Some(tx)) = self.senders.get(worker) {
            // Unserved from now until its first token: counted here, not when the worker gets
            // to it, so tickets handed out in a burst are all in the backlog at once.
            // A worker only reports idle while waiting on its channel, so the one slot is free.
            if tx.try_send(ticket).is_ok() {
                self.ctx
                    .live
                    .unserved
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    fn retire(&mut self, worker: usize) {
        if let Some(slot) = self.senders.get_mut(worker) {
            *slot = None;
        }
    }

    fn phase_at(&self, release: Instant, intended: Instant) -> Phase {
        if intended < release + self.plan.measure_from() {
            Phase::Warmup
        } else {
            Phase::Measured
        }
    }

    /// Counts a ticket about to be made against the stop rule; false when it must not be made.
    fn admit(&mut self, release: Instant, intended: Instant) -> Option<Phase> {
        if self.done_issuing {
            return None;
        }
        let phase = self.phase_at(release, intended);
        match self.plan.stop {
            Stop::For(duration) if intended >= release + self.plan.ramp_up + duration => {
                self.done_issuing = true;
                return None;
            }
            Stop::Requests(n) if phase == Phase::Measured && self.measured_issued >= n => {
                self.done_issuing = true;
                return None;
            }
            _ => {}
        }
        if phase == Phase::Measured {
            self.measured_issued += 1;
            self.report.scheduled += 1;
            if let Stop::Requests(n) = self.plan.stop {
                self.done_issuing |= self.measured_issued >= n;
            }
        }
        Some(phase)
    }

    /// Opens the connections of the start and waits until they are ready (or the run stops).
    async fn open_ahead(&mut self, count: u32) -> bool {
        for _ in 0..count {
            self.spawn_worker();
        }
        while self.connecting > 0 {
            tokio::select! {
                biased;
                () = self.ctx.signals.stop.cancelled() => return false,
                Some((worker, _, _)) = self.idle_rx.recv() => {
                    self.note_idle(worker);
                    self.idle.push(worker);
                }
            }
        }
        true
    }

    /// Waits for the wall-clock release time, with the connections open; false when the run
    /// stops meanwhile.
    async fn wait_for_release(&self, at: std::time::SystemTime) -> bool {
        tokio::select! {
            biased;
            () = self.ctx.signals.stop.cancelled() => false,
            () = super::sleep_until_wall(at) => true,
        }
    }

    async fn run(&mut self) -> LoadReport {
        let ahead = match self.plan.pacing {
            Pacing::Closed { concurrency } => concurrency,
            Pacing::Open { rate, .. } => {
                (rate.ceil().min(f64::from(u32::MAX)) as u32).clamp(OPEN_LOOP_PREOPEN.0, OPEN_LOOP_PREOPEN.1)
            }
        }
        .min(self.cap);
        let mut opened = self.open_ahead(ahead).await;
        if let Some(at) = self.plan.release_at {
            self.report.ready_late = std::time::SystemTime::now() > at;
            opened &= self.wait_for_release(at).await;
            let late = std::time::SystemTime::now().duration_since(at).unwrap_or_default();
            self.report.release_lateness_ms = Some(late.as_secs_f64() * 1000.0);
        }
        let release = Instant::now();
        let run_start = self.ctx.run_start;
        self.report.released_s = (release - run_start).as_secs_f64();
        self.ctx.clock.release(self.report.released_s);
        self.report.window = self.plan.window().map(|(a, b)| {
            (
                (release + a - run_start).as_secs_f64(),
                (release + b - run_start).as_secs_f64(),
            )
        });
        if opened {
            match self.plan.pacing.clone() {
                Pacing::Closed { concurrency } => self.closed_loop(release, concurrency).await,
                Pacing::Open {
                    rate, arrival, seed, ..
                } => {
                    let schedule = Schedule::new(arrival, rate, self.plan.ramp_up, seed);
                    self.open_loop(release, schedule).await
                }
            }
        }
        self.drain().await;
        self.report.connections = self.senders.len() as u32;
        std::mem::take(&mut self.report)
    }

    /// Each idle worker gets its next ticket at once; during a ramp-up, worker i starts at
    /// i/N of it.
    async fn closed_loop(&mut self, release: Instant, concurrency: u32) {
        let ramp_up = self.plan.ramp_up;
        let turn = move |worker: usize| release + ramp_up.mul_f64(worker as f64 / f64::from(concurrency.max(1)));
        let mut ready: Vec<Idle> = self.idle.drain(..).map(|w| (w, release, false)).collect();
        ready.sort_unstable_by_key(|idle| idle.0);
        let mut pending: VecDeque<Idle> = ready.into();
        // A timed step stops issuing at its end even while every connection is busy: the
        // requests in flight then drain under the drain time.
        let end = self.sending_ends(release);
        loop {
            while let Some((worker, free_at, unsent)) = pending.pop_front() {
                self.report.unsent += u64::from(unsent);
                let intended = free_at.max(turn(worker));
                match self.admit(release, intended) {
                    Some(phase) => {
                        let seq = self.next_seq();
                        self.hand(
                            worker,
                            Ticket {
                                seq,
                                intended,
                                phase,
                                handed: intended,
                                until: end,
                            },
                        )
                    }
                    None => self.retire(worker),
                }
            }
            if self.senders.iter().all(Option::is_none) {
                return;
            }
            tokio::select! {
                biased;
                () = self.ctx.signals.stop.cancelled() => {
                    self.stop_sending();
                    return;
                }
                Some(idle) = self.idle_rx.recv() => pending.push_back(idle),
                () = sleep_until_or_never(end) => {
                    self.done_issuing = true;
                    return;
                }
            }
        }
    }

    /// When a timed step stops sending (its planned end), as an instant.
    fn sending_ends(&self, release: Instant) -> Option<Instant> {
        match self.plan.stop {
            Stop::For(duration) => Some(release + self.plan.ramp_up + duration),
            Stop::Requests(_) => None,
        }
    }

    async fn open_loop(&mut self, release: Instant, schedule: Schedule) {
        let end = self.sending_ends(release);
        let (tx, mut arrivals) = mpsc::unbounded_channel();
        let clock = AlarmClock {
            schedule,
            release: release.into_std(),
            end: end.map(Instant::into_std),
            tx,
        };
        if let Err(e) = std::thread::Builder::new()
            .name("llm-bench-schedule".into())
            .spawn(move || clock.run())
        {
            // Without its clock the step cannot send on time: it ends here, said in the log.
            warn_line(&crate::i18n::tr(
                crate::i18n::Msg::ScheduleThreadFailed,
                &[("error", &e)],
            ));
            self.done_issuing = true;
            return;
        }
        loop {
            if self.done_issuing {
                // What still waits for a connection is sent while the step drains.
                return;
            }
            tokio::select! {
                biased;
                () = self.ctx.signals.stop.cancelled() => {
                    self.stop_sending();
                    self.drop_waiting();
                    return;
                }
                Some((worker, _, unsent)) = self.idle_rx.recv() => {
                    if let Some(free) = self.on_idle(worker, unsent) {
                        self.idle.push(free);
                    }
                }
                intended = arrivals.recv() => match intended {
                    Some(intended) => self.issue_open(release, Instant::from_std(intended)),
                    // The clock stops at the step's end.
                    None => self.done_issuing = true,
                },
            }
        }
    }

    fn issue_open(&mut self, release: Instant, intended: Instant) {
        let Some(phase) = self.admit(release, intended) else {
            return;
        };
        let ticket = Ticket {
            seq: self.next_seq(),
            intended,
            phase,
            handed: intended,
            until: self.sending_ends(release),
        };
        // Waiting for a connection here, or sent and not yet served there: requests already
        // streaming tokens are being served, however long they are.
        let backlog = self.waiting.len() as u64 + self.ctx.live.unserved.load(std::sync::atomic::Ordering::Relaxed);
        if let Some(limit) = self.report.backlog_limit {
            if backlog + 1 > limit {
                // The server cannot keep up: the step ends here, the queue is dropped.
                self.report.saturated = true;
                self.stop_sending();
                self.report.unsent += u64::from(phase == Phase::Measured);
                self.drop_waiting();
                return;
            }
        }
        self.report.max_backlog = self.report.max_backlog.max(backlog + 1);
        match self.idle.pop() {
            Some(worker) => self.hand(worker, ticket),
            None => {
                self.waiting.push_back(ticket);
                if (self.senders.len() as u64) < u64::from(self.cap) && self.connecting < self.waiting.len() {
                    self.spawn_worker();
                }
            }
        }
    }

    /// No more tickets: hand what still waits to workers as they free up, retire the others,
    /// let the busy ones finish (bounded by the drain time after a timed step's end or after a
    /// Ctrl-C), then cut what is left.
    async fn drain(&mut self) {
        while let Some(worker) = self.idle.pop() {
            match self.pop_waiting() {
                Some(ticket) => self.hand(worker, ticket),
                None => self.retire(worker),
            }
        }
        let stopped = self.ctx.signals.stop.is_cancelled();
        if stopped {
            self.drop_waiting();
        }
        let drain = self.ctx.signals.drain;
        let deadline = match (self.report.window, stopped) {
            (Some((_, end)), false) => Some(self.ctx.run_start + Duration::from_secs_f64(end) + drain),
            _ => None,
        };
        let stop = self.ctx.signals.stop.clone();
        let stopped_then_drained = async move {
            stop.cancelled().await;
            tokio::time::sleep(drain).await;
        };
        tokio::pin!(stopped_then_drained);
        let window_drained = sleep_until_or_never(deadline);
        tokio::pin!(window_drained);
        loop {
            if !self.waiting.is_empty() && self.ctx.signals.stop.is_cancelled() {
                self.drop_waiting();
            }
            tokio::select! {
                biased;
                joined = self.workers.join_next() => {
                    if joined.is_none() {
                        return;
                    }
                }
                Some((worker, _, unsent)) = self.idle_rx.recv() => {
                    if let Some(free) = self.on_idle(worker, unsent) {
                        self.retire(free);
                    }
                }
                () = &mut stopped_then_drained => break,
                () = &mut window_drained => break,
            }
        }
        self.drop_waiting();
        // Cut what is still in flight: each worker records its request as cancelled.
        self.cut.cancel();
        for slot in &mut self.senders {
            *slot = None;
        }
        while self.workers.join_next().await.is_some() {}
        // Tickets given back at the cut were never sent.
        while let Ok((_, _, unsent)) = self.idle_rx.try_recv() {
            self.report.unsent += u64::from(unsent);
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.issued += 1;
        self.issued - 1
    }

    /// No more tickets from now on, and the window ends here (saturation, Ctrl-C).
    fn stop_sending(&mut self) {
        self.done_issuing = true;
        self.end_early();
    }

    /// Sending ended before the planned end (saturation, Ctrl-C): the window ends now.
    fn end_early(&mut self) {
        let now = (Instant::now() - self.ctx.run_start).as_secs_f64();
        if let Some((start, end)) = self.report.window.as_mut() {
            *end = end.min(now).max(*start);
            self.ctx.clock.end_early(*end);
        }
    }

    fn drop_waiting(&mut self) {
        self.report.unsent += self.waiting.iter().filter(|t| t.phase == Phase::Measured).count() as u64;
        self.waiting.clear();
    }
}

/// One connection and the loop that sends what it is handed.
struct Worker {
    index: usize,
    client: Client,
    maker: Arc<RequestMaker>,
    point: crate::load::LoadPoint,
    run_start: Instant,
    live: Arc<super::LiveCounters>,
    records: mpsc::UnboundedSender<RequestRecord>,
    cut: CancellationToken,
    /// A stop (Ctrl-C) ends sending: a ticket not yet sent is given back.
    stop: CancellationToken,
    /// The next request, being built ahead ([`RequestMaker::builds_ahead`]).
    next: Option<tokio::task::JoinHandle<super::Prepared>>,
}

impl Worker {
    async fn run(mut self, mut tickets: mpsc::Receiver<Ticket>, idle: mpsc::UnboundedSender<Idle>) {
        // A failed pre-connect is retried, and recorded, by the first request.
        tokio::select! {
            _ = self.client.ensure_connected() => {}
            () = self.cut.cancelled() => return,
        }
        if idle.send((self.index, Instant::now(), false)).is_err() {
            return;
        }
        let mut k = 0u64;
        loop {
            let ticket = tokio::select! {
                biased;
                () = self.cut.cancelled() => {
                    // A ticket handed just before the cut was never sent.
                    if let Ok(ticket) = tickets.try_recv() {
                        self.live.unserved.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                        let _ = idle.send((self.index, Instant::now(), ticket.phase == Phase::Measured));
                    }
                    return;
                }
                ticket = tickets.recv() => match ticket {
                    Some(ticket) => ticket,
                    None => return,
                },
            };
            if ticket.intended > Instant::now() || self.stop.is_cancelled() {
                // Due later (a ramp-up turn, a pause after a refused connection): a stop in
                // the meantime means it is not sent; it is given back and counted as unsent.
                let stopped = tokio::select! {
                    () = tokio::time::sleep_until(ticket.intended) => self.stop.is_cancelled(),
                    () = self.stop.cancelled() => true,
                };
                if stopped {
                    self.live.unserved.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    let measured = ticket.phase == Phase::Measured;
                    if idle.send((self.index, Instant::now(), measured)).is_err() {
                        return;
                    }
                    continue;
                }
            }
            let Some(free_at) = self.serve(ticket, &mut k).await else {
                return;
            };
            if idle.send((self.index, free_at, false)).is_err() {
                return;
            }
        }
    }

    /// Carries out a ticket: one request, or all the turns of a session. Returns when the next
    /// ticket may go, or `None` when the records channel is closed.
    async fn serve(&mut self, ticket: Ticket, k: &mut u64) -> Option<Instant> {
        let Some(&(plan, seed)) = self.maker.sessions() else {
            let conn = self.index as u32;
            let prepared = match self.next.take() {
                Some(ahead) => match ahead.await {
                    Ok(prepared) => prepared,
                    Err(_) => self.maker.make(conn, *k, ticket.seq),
                },
                None => self.maker.make(conn, *k, ticket.seq),
            };
            *k += 1;
            if self.maker.builds_ahead() {
                // Built on the blocking pool while this one is in flight: never on the send path.
                let (maker, next_k) = (self.maker.clone(), *k);
                self.next = Some(tokio::task::spawn_blocking(move || maker.make(conn, next_k, 0)));
            }
            return self.send(ticket, prepared).await.map(|(free_at, _)| free_at);
        };
        let mut conversation = self.maker.new_session(self.index as u32, *k);
        *k += 1;
        let mut ticket = ticket;
        loop {
            let (prepared, question) = self.maker.make_turn(&conversation);
            let (free_at, answer) = self.send(ticket, prepared).await?;
            // A failed turn ends the conversation: there is no answer to build on.
            let Some(answer) = answer else {
                return Some(free_at);
            };
            conversation.answered(question, answer);
            if conversation.turn >= plan.turns {
                return Some(free_at);
            }
            let next = free_at + super::session::think_time(&plan, seed, conversation.id, conversation.turn - 1);
            if ticket.until.is_some_and(|until| next >= until) {
                return Some(free_at);
            }
            let stopped = tokio::select! {
                () = tokio::time::sleep_until(next) => self.stop.is_cancelled(),
                () = self.stop.cancelled() => true,
                () = self.cut.cancelled() => true,
            };
            if stopped {
                return Some(free_at);
            }
            // Unserved until its first token, as the dispatcher counts a ticket it hands out.
            self.live.unserved.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            ticket = Ticket {
                intended: next,
                handed: next,
                ..ticket
            };
        }
    }

    /// Sends one request and records it; returns when the next one may go and the answer's
    /// text when it was kept and the request succeeded, or `None` when the records channel is
    /// closed.
    async fn send(&mut self, ticket: Ticket, prepared: super::Prepared) -> Option<(Instant, Option<String>)> {
        let mut rec = RequestRecord {
            id: prepared.id,
            test: prepared.test,
            concurrency: self.point.concurrency().unwrap_or(0),
            conn: self.index as u32,
            phase: ticket.phase,
            ..RequestRecord::default()
        };
        prepared.about.apply(&mut rec);
        self.live.started();
        // The request is ready to go when it is due and has a connection to go on.
        let ready = ticket.intended.max(ticket.handed);
        let cut = tokio::select! {
            biased;
            () = self.client.execute(&prepared.outgoing, self.run_start, &mut rec) => false,
            () = self.cut.cancelled() => true,
        };
        if cut {
            cancelled(&mut rec, self.run_start);
            // The connection is mid-response: it cannot carry another request.
            self.client.disconnect();
        }
        rec.load = Some(self.point);
        rec.intended_s = Some(ticket.intended.saturating_duration_since(self.run_start).as_secs_f64());
        rec.queue_us = ticket.handed.saturating_duration_since(ticket.intended).as_micros() as u64;
        // Neither connecting nor a resent attempt (the server's doing) is send delay.
        let sent = self.run_start + Duration::from_secs_f64(rec.start_s);
        // A resent request went out first on a connection already open; the resend's wait holds
        // the new connection's opening.
        let not_delay_us = if rec.resends > 0 {
            rec.resend_wait_us
        } else {
            rec.connect_us
        };
        rec.send_delay_us = (sent.saturating_duration_since(ready).as_micros() as u64).saturating_sub(not_delay_us);
        let mut free_at = sent + Duration::from_micros(rec.end_us);
        self.live.finished(rec.ok, rec.events);
        if rec.error == Some(ErrorClass::Connect) {
            // The pause is deliberate, not the client falling behind.
            free_at = Instant::now() + PAUSE_AFTER_REFUSED;
        }
        let answer = rec.answer_text.take().filter(|_| rec.ok);
        self.records.send(rec).ok()?;
        Some((free_at, answer))
    }
}

/// The open loop's clock: a thread of its own that wakes at each intended send time and hands
/// it to the dispatcher. The runtime's timers have millisecond ticks, which at thousands of
/// requests a second would make every send up to a millisecond late; a thread sleeping with
/// 1 µs timer slack wakes within tens of microseconds. It ends at the step's end, or when the
/// dispatcher stops listening.
struct AlarmClock {
    schedule: Schedule,
    release: std::time::Instant,
    end: Option<std::time::Instant>,
    tx: mpsc::UnboundedSender<std::time::Instant>,
}

impl AlarmClock {
    fn run(mut self) {
        #[cfg(target_os = "linux")]
        // SAFETY: prctl(PR_SET_TIMERSLACK) only sets this thread's timer slack (in ns).
        unsafe {
            libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong, 0, 0, 0);
        }
        loop {
            let next = self.schedule.next_s();
            if next.is_infinite() {
                // The schedule ended (a trace's last request): the step sends no more.
                return;
            }
            let at = self.release + Duration::from_secs_f64(next.min(1e9));
            match self.end {
                // No arrival is due before the end: the step still lasts until then.
                Some(end) if at >= end => {
                    self.sleep_until(end);
                    return;
                }
                _ => {}
            }
            if !self.sleep_until(at) || self.tx.send(at).is_err() {
                return;
            }
        }
    }

    /// Sleeps until `at`, in slices of at most a second so that a dispatcher that stopped
    /// listening (a stop, a step of N requests that is done) ends the thread soon. False when
    /// it stopped listening.
    fn sleep_until(&self, at: std::time::Instant) -> bool {
        loop {
            if self.tx.is_closed() {
                return false;
            }
            let now = std::time::Instant::now();
            if now >= at {
                return true;
            }
            std::thread::sleep((at - now).min(Duration::from_secs(1)));
        }
    }
}

fn warn_line(message: &str) {
    eprintln!(
        "llm-bench: {}",
        crate::i18n::tr(crate::i18n::Msg::WarningLine, &[("text", &message)])
    );
}

async fn sleep_until_or_never(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A request cut before it finished: what arrived is kept, the rest is marked cancelled.
fn cancelled(rec: &mut RequestRecord, run_start: Instant) {
    let now = run_start.elapsed().as_secs_f64();
    if rec.start_s <= 0.0 {
        rec.start_s = now;
    }
    rec.end_us = ((now - rec.start_s).max(0.0) * 1e6) as u64;
    rec.ok = false;
    rec.error = Some(ErrorClass::Cancelled);
    rec.error_message =
        Some("still in flight when the step's drain time ran out, or stopped by a second Ctrl-C".into());
    rec.output_tokens = rec.token_us.len() as u64;
    rec.tokens_estimated = true;
}
