//! scratch: run the engine on a sim world and dump shared weights + diagnostics.
use persona_engine::simulate::{SimConfig, Variant, World};
use persona_engine::*;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let v = args.get(1).and_then(|v| Variant::parse(v)).unwrap_or(Variant::Classic);
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let cfg = SimConfig { variant: v, impressions: n, ..SimConfig::default() };
    let w = World::build(&cfg).unwrap();
    let sel = Selector::new(w.catalog().clone(), SelectorConfig::with_policy(Policy::Greedy)).unwrap();
    let mut selection = sel.new_selection(1);
    let plan = w.impressions(cfg.seed, n);
    let (mut got, mut best, mut off) = (0.0, 0.0, 0);
    let mut shown = vec![0u32; w.creatives()];
    for imp in &plan {
        let mut profile = w.profile(imp.person).unwrap().clone();
        let ctx = Context::at(imp.at).with_device(imp.device).with_channel(Channel::Web).with_seed(imp.select_seed);
        sel.select(&profile, &ctx, w.placement(), &mut selection).unwrap();
        let c = selection.picks()[0].creative;
        let i = w.creative_index(c);
        let dp = imp.daypart();
        let r = w.click_rate(imp.person, i, imp.device, dp);
        let mut o: f64 = 0.0;
        for k in 0..w.creatives() { o = o.max(w.click_rate(imp.person, Some(k), imp.device, dp)); }
        got += r; best += o;
        if let Some(i) = i { shown[i] += 1; }
        sel.record(&mut profile, &Feedback::new(c, FeedbackKind::Impression, &ctx)).unwrap();
        if imp.click_draw < r { sel.record(&mut profile, &Feedback::new(c, FeedbackKind::Click, &ctx)).unwrap(); }
        let _ = &mut off;
    }
    println!("share {:.3}", got / best);
    let snap = sel.save_stats();
    let q = |sd: f64| 1.0 / (sd * sd);
    for e in &snap.model {
        if e.scope == "shared" || e.scope == "persona" && e.name == "persona-00" {
            let (eta, p) = (e.eta as f64 / 16777216.0, e.precision as f64 / 16777216.0);
            println!("{:8} {:12} {:16} mean-from-data {:+.3} (prec {:.1}; post mean w/ prior0 {:+.3})", e.scope, e.name, e.feature, eta / p.max(1e-9), p, eta / (q(0.25) + p));
        }
    }
    let tried = shown.iter().filter(|s| **s > 0).count();
    let tried10 = shown.iter().filter(|s| **s >= 10).count();
    println!("creatives shown at least once {tried}, at least 10 times {tried10}");
}
