use persona_engine::simulate::{run, SimConfig};
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut c = SimConfig::default();
    let args: Vec<String> = std::env::args().collect();
    if let Some(r) = args.get(1) { c.rounds = r.parse()?; }
    if let Some(r) = args.get(2) { c.seed = r.parse()?; }
    let t = std::time::Instant::now();
    let r = run(&c)?;
    println!("{}", r.to_markdown());
    for row in &r.rows { println!("{:30} exp {:.4} windows {:?}", row.name, row.expected_click_rate, row.window_expected_click_rate.iter().map(|x| (x*1000.0).round()/10.0).collect::<Vec<_>>()); }
    eprintln!("{:?}", t.elapsed());
    Ok(())
}
