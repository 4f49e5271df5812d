/**
 * The AOPD ablations (claims C4, C6, C10, C11, C12, C13): one data file, data/figures/ablations.json (data.ts), made
 * from specs eta, beta, topk and location by the generator 'ablations', and the figures drawn from it:
 *
 *   fig3JsdFamilyDynamics       C4    AOPD Fig. 3 / 9   gradient norm, entropy, intervention ratio per beta
 *   fig4bcInterventionRatio     C6    AOPD Fig. 4b, 4c  intervention ratio over training; AOPD-Zero / eta < 0 vs OPD
 *   fig7BetaAccuracy            C10   AOPD Fig. 7       final pass@1 vs beta
 *   fig8abTopK                  C11   AOPD Fig. 8a, 8b  final pass@1 vs K; early pass@1 curves per K
 *   fig8cInterventionLocation   C12   AOPD Fig. 8c      final pass@1 of the intervention-location variants
 *   fig11EtaAblation            C13   AOPD Fig. 11      final pass@1 and intervention ratio vs eta, OPD reference
 *
 * zeroBand.ts: the zero-advantage band summary of notebook 03 (not a registered figure).
 */
export * from './data';
export * from './common';
export * from './fig3';
export * from './fig4bc';
export * from './fig7';
export * from './fig8ab';
export * from './fig8c';
export * from './fig11';
export * from './zeroBand';
