import '../shared/styles.css';
import { h, mount } from '../shared/ui.ts';

mount(document.getElementById('app') as HTMLElement, h('p', null, 'wallet'));
