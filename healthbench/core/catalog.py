"""The registries every task file and CLI name resolves through.

Each built-in name maps to the module that defines it, as ``"module:attr"`` (or ``"module"`` for
a family of names registered by one loop in that module); nothing is imported until a name is
used, so ``import healthbench.report`` (or listing task files) loads no loader, metric or model.
Third-party models and labelers come in through the ``healthbench.models`` and
``healthbench.labelers`` entry-point groups. ``tests/test_catalog.py`` checks that every target
resolves and that the modules register no name missing here.
"""
from __future__ import annotations

from healthbench.core.registry import Registry

_LOADERS_TARGETS = {
    'cxr_findings': 'healthbench.suites.mimic_cxr.loader:load_cxr_findings',
    'image_folder': 'healthbench.suites.generation.loader:load_image_folder',
    'ixi': 'healthbench.suites.generation.loader:load_ixi',
    'llava_rad_findings': 'healthbench.suites.mimic_cxr.peer_files:load_llava_rad_findings',
    'mimic_cxr': 'healthbench.suites.mimic_cxr.loader:load_mimic_cxr',
    'mmmu': 'healthbench.suites.mmmu.loader:load_mmmu',
    'mmoral_opg': 'healthbench.suites.mmoral.loader:load_mmoral_opg',
    'mmoral_uni': 'healthbench.suites.mmoral.loader:load_mmoral_uni',
    'omnimedvqa': 'healthbench.suites.omnimedvqa.loader:load_omnimedvqa',
    'pathvqa': 'healthbench.suites.medvqa.loader:load_pathvqa',
    'pmc_mi_bench': 'healthbench.suites.pmc_mi_bench.loader:load_pmc_mi_bench',
    'pmc_vqa': 'healthbench.suites.medvqa.loader:load_pmc_vqa',
    'slake': 'healthbench.suites.medvqa.loader:load_slake',
    'synthrad2023': 'healthbench.suites.generation.loader:load_synthrad',
    'unix_test_data': 'healthbench.suites.mimic_cxr.peer_files:load_unix_test_data',
    'vqa_rad': 'healthbench.suites.medvqa.loader:load_vqa_rad',
}
LOADERS: Registry = Registry('dataset format', _LOADERS_TARGETS)

_SAMPLE_BUILDERS_TARGETS = {
    'mimic_cxr_sample': 'healthbench.suites.mimic_cxr.samples:build_mimic_cxr_sample',
    'mmmu_med_sample': 'healthbench.suites.mmmu.loader:build_mmmu_med_sample',
    'omnimedvqa_sample': 'healthbench.suites.omnimedvqa.loader:build_omnimedvqa_sample',
    'pathvqa_sample': 'healthbench.suites.medvqa.samples:build_pathvqa_sample',
    'pmc_mi_bench_sample': 'healthbench.suites.pmc_mi_bench.loader:build_pmc_mi_bench_sample',
    'pmc_vqa_sample': 'healthbench.suites.medvqa.samples:build_pmc_vqa_sample',
    'reconstruction_sample': 'healthbench.suites.generation.loader:build_reconstruction_sample',
    'slake_sample': 'healthbench.suites.medvqa.samples:build_slake_sample',
    'super_resolution_sample': 'healthbench.suites.generation.loader:build_super_resolution_sample',
    'vqa_rad_sample': 'healthbench.suites.medvqa.samples:build_vqa_rad_sample',
}
SAMPLE_BUILDERS: Registry = Registry('sample builder', _SAMPLE_BUILDERS_TARGETS)

_PROMPT_BUILDERS_TARGETS = {
    'medvqa_yes_no': 'healthbench.suites.medvqa.loader:yes_no_prompt',
    'mmmu': 'healthbench.suites.mmmu.loader:mmmu_prompt',
    'mmoral_opg': 'healthbench.suites.mmoral.loader:mmoral_opg_prompt',
    'mmoral_uni': 'healthbench.suites.mmoral.loader:mmoral_uni_prompt',
    'pmc_mi_bench': 'healthbench.suites.pmc_mi_bench.loader:pmc_mi_bench_prompt',
    'slake': 'healthbench.suites.medvqa.loader:slake_prompt',
}
PROMPT_BUILDERS: Registry = Registry('prompt builder', _PROMPT_BUILDERS_TARGETS)

_EXTRACTORS_TARGETS = {
    'chexpert_labels': 'healthbench.suites.mimic_cxr.metrics:chexpert_labels',
    'choice_letter': 'healthbench.scoring.extract:choice_letter',
    'final_answer': 'healthbench.scoring.extract:final_answer',
    'identity': 'healthbench.scoring.extract:identity',
    'medevalkit_choice': 'healthbench.scoring.medevalkit:medevalkit_choice',
    'medvqa_answer': 'healthbench.suites.medvqa.metrics:medvqa_answer',
    'mmmu': 'healthbench.suites.mmmu.metrics:mmmu_answer',
    'mmoral_opg_answer': 'healthbench.suites.mmoral.metrics:mmoral_opg_answer',
}
EXTRACTORS: Registry = Registry('answer extractor', _EXTRACTORS_TARGETS)

_METRICS_TARGETS = {
    'accuracy': 'healthbench.scoring.basic:accuracy',
    'bleu': 'healthbench.scoring.text:bleu_metric',
    'chexpert_macro_f1_14_uneg': 'healthbench.suites.mimic_cxr.metrics',
    'chexpert_macro_f1_14_upos': 'healthbench.suites.mimic_cxr.metrics',
    'chexpert_macro_f1_5_uneg': 'healthbench.suites.mimic_cxr.metrics',
    'chexpert_macro_f1_5_upos': 'healthbench.suites.mimic_cxr.metrics',
    'chexpert_micro_f1_14_uneg': 'healthbench.suites.mimic_cxr.metrics',
    'chexpert_micro_f1_14_upos': 'healthbench.suites.mimic_cxr.metrics',
    'chexpert_micro_f1_5_uneg': 'healthbench.suites.mimic_cxr.metrics',
    'chexpert_micro_f1_5_upos': 'healthbench.suites.mimic_cxr.metrics',
    'cider': 'healthbench.scoring.text:cider_metric',
    'closed_accuracy': 'healthbench.suites.medvqa.metrics:closed_accuracy',
    'exact_match': 'healthbench.scoring.basic:exact_match',
    'fidelity_mae': 'healthbench.suites.generation.metrics',
    'fidelity_mse': 'healthbench.suites.generation.metrics',
    'fidelity_psnr': 'healthbench.suites.generation.metrics',
    'fidelity_ssim': 'healthbench.suites.generation.metrics',
    'label_f1': 'healthbench.scoring.labels',
    'label_precision': 'healthbench.scoring.labels',
    'label_recall': 'healthbench.scoring.labels',
    'llm_judge': 'healthbench.scoring.judge:llm_judge',
    'macro_f1': 'healthbench.scoring.labels',
    'macro_precision': 'healthbench.scoring.labels',
    'macro_recall': 'healthbench.scoring.labels',
    'medvqa_accuracy': 'healthbench.suites.medvqa.metrics:medvqa_accuracy',
    'meteor': 'healthbench.scoring.text:meteor_metric',
    'micro_f1': 'healthbench.scoring.labels',
    'micro_precision': 'healthbench.scoring.labels',
    'micro_recall': 'healthbench.scoring.labels',
    'mmmu_accuracy': 'healthbench.suites.mmmu.metrics:mmmu_accuracy',
    'mmoral_closed_accuracy': 'healthbench.suites.mmoral.metrics:mmoral_closed_accuracy',
    'mmoral_opg_average': 'healthbench.suites.mmoral.metrics:mmoral_opg_average',
    'mmoral_parse_failure': 'healthbench.suites.mmoral.metrics:mmoral_parse_failure',
    'mmoral_uni_ii': 'healthbench.suites.mmoral.metrics:mmoral_uni_ii',
    'mse': 'healthbench.scoring.image',
    'open_exact_match': 'healthbench.suites.medvqa.metrics:open_exact_match',
    'open_recall': 'healthbench.suites.medvqa.metrics:open_recall',
    'parse_failure': 'healthbench.scoring.basic:parse_failure',
    'pmc_mi_bleu4': 'healthbench.suites.pmc_mi_bench.metrics',
    'pmc_mi_choice_macro_f1': 'healthbench.suites.pmc_mi_bench.metrics:pmc_mi_choice_macro_f1',
    'pmc_mi_choice_official': 'healthbench.suites.pmc_mi_bench.metrics:pmc_mi_choice_official',
    'pmc_mi_exact_match': 'healthbench.suites.pmc_mi_bench.metrics',
    'pmc_mi_rouge_l': 'healthbench.suites.pmc_mi_bench.metrics',
    'pmc_mi_token_f1': 'healthbench.suites.pmc_mi_bench.metrics',
    'psnr': 'healthbench.scoring.image',
    'rouge_l': 'healthbench.scoring.text:rouge_l_metric',
    'samples_f1': 'healthbench.scoring.labels',
    'samples_precision': 'healthbench.scoring.labels',
    'samples_recall': 'healthbench.scoring.labels',
    'sentence_bleu': 'healthbench.scoring.text:sentence_bleu_metric',
    'ssim': 'healthbench.scoring.image',
    'token_f1': 'healthbench.scoring.text',
    'token_precision': 'healthbench.scoring.text',
    'token_recall': 'healthbench.scoring.text',
    'weighted_f1': 'healthbench.scoring.labels',
    'weighted_precision': 'healthbench.scoring.labels',
    'weighted_recall': 'healthbench.scoring.labels',
}
METRICS: Registry = Registry('metric', _METRICS_TARGETS)

_MODELS_TARGETS = {
    'bicubic': 'healthbench.models.image_baselines:BicubicModel',
    'healthgpt': 'healthbench.models.healthgpt.plugin:HealthGPTPlugin',
    'hf': 'healthbench.models.hf:HFModel',
    'identity': 'healthbench.models.image_baselines:IdentityModel',
    'openai': 'healthbench.models.openai_compat:OpenAIChatModel',
    'random': 'healthbench.models.baselines:RandomModel',
    'replay': 'healthbench.models.baselines:ReplayModel',
    'tiny': 'healthbench.models.tiny:TinyVLM',
}
MODELS: Registry = Registry('model', _MODELS_TARGETS, entry_point_group='healthbench.models')

_LABELERS_TARGETS = {
    'chexbert': 'healthbench.suites.mimic_cxr.chexbert:chexbert',
    'chexpert_rules': 'healthbench.suites.mimic_cxr.rules_labeler:chexpert_rules',
}
LABELERS: Registry = Registry('labeler', _LABELERS_TARGETS, entry_point_group='healthbench.labelers')
