//! The trainer sets up its own threads (`TrainerConfig::threads`), so that a program using
//! the library trains as the CLI does. One test alone in its binary: the thread counts are
//! the process's, and other tests building trainers would change them under it.
use plastic_agents::a2c::{Trainer, TrainerConfig};
use plastic_agents::cores::CoreConfig;
use plastic_agents::threads;
use plastic_envs::registry;

fn trainer(core: CoreConfig, threads: usize) -> Trainer {
    let config = TrainerConfig {
        core,
        threads,
        ..TrainerConfig::default()
    };
    let env = registry::parse("bandit-dependent-easy:len=10").unwrap();
    Trainer::new(env.build(2).unwrap(), config, 100, 0, tch::Device::Cpu).unwrap()
}

#[test]
fn a_trainer_gives_its_configured_threads_to_the_host_loops_or_to_libtorch() {
    // 3: neither libtorch's count on this machine by chance nor the single thread of old.
    let plastic = trainer(CoreConfig::backpropamine(8), 3);
    assert!(plastic.steps_on_host());
    assert_eq!((threads::loop_threads(), tch::get_num_threads()), (3, 1));
    assert_eq!(threads::count(), 3);
    // STPN's steps run on the host too.
    let stpn = trainer(CoreConfig::stpn(8), 3);
    assert!(stpn.steps_on_host());
    assert_eq!((threads::loop_threads(), tch::get_num_threads()), (3, 1));
    let lstm = trainer(CoreConfig::lstm(8), 3);
    assert!(!lstm.steps_on_host());
    assert_eq!((threads::loop_threads(), tch::get_num_threads()), (1, 3));
    // 0: libtorch's own choice, the machine's cores.
    trainer(CoreConfig::backpropamine(8), 0);
    assert_eq!(threads::loop_threads(), threads::default_count());
}
