// TEMPORARY load probe for the simulator (to be deleted).
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args[1].as_str() {
        "serve" => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let cfg = llm_bench::sim::SimConfig {
                port: args[2].parse().unwrap(),
                max_batch: args[3].parse().unwrap(),
                decode_ms_per_seq: args[4].parse().unwrap(),
                ..Default::default()
            };
            rt.block_on(llm_bench::sim::serve_forever(cfg)).unwrap();
        }
        _ => {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            rt.block_on(client(args[2].parse().unwrap(), args[3].parse().unwrap(), args[4].parse().unwrap()));
        }
    }
}

async fn client(port: u16, n: usize, max_tokens: u64) {
    llm_bench::sim::raise_fd_limit();
    let t0 = Instant::now();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(1000));
    let mut tasks = Vec::new();
    let body = format!(r#"{{"messages":[{{"role":"user","content":"hello there, this is a prompt of some length"}}],"max_tokens":{max_tokens},"stream":true}}"#);
    for _ in 0..n {
        let body = body.clone();
        let sem = sem.clone();
        tasks.push(tokio::spawn(async move {
            let permit = sem.acquire_owned().await.unwrap();
            let mut s = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
            drop(permit);
            s.set_nodelay(true).unwrap();
            let req = format!("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}", body.len(), body);
            s.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; 16384];
            let mut tail: Vec<u8> = Vec::new();
            let mut total = 0usize;
            loop {
                let k = s.read(&mut buf).await.map_err(|e| e.to_string())?;
                if k == 0 { return Err("eof".to_string()); }
                total += k;
                tail.extend_from_slice(&buf[..k]);
                if tail.len() > 64 { tail.drain(..tail.len() - 64); }
                if tail.windows(12).any(|w| w == b"data: [DONE]") { return Ok::<usize, String>(total); }
            }
        }));
    }
    let mut ok = 0; let mut bytes = 0; let mut errs = std::collections::HashMap::new();
    for t in tasks {
        match t.await.unwrap() { Ok(b) => { ok += 1; bytes += b; } Err(e) => *errs.entry(e).or_insert(0) += 1 }
    }
    println!("ok={ok} bytes={bytes} errs={errs:?} wall={:?}", t0.elapsed());
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(b"GET /sim/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    println!("{}", out.split("\r\n\r\n").nth(1).unwrap_or(""));
}
