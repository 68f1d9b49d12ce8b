// A page that throws while rendering shows the error instead of leaving a blank screen.
import { Component, type ReactNode } from 'react';
import { ErrorAlert } from './status';

export class ErrorBoundary extends Component<{ children: ReactNode }, { error: unknown }> {
  override state: { error: unknown } = { error: undefined };

  static getDerivedStateFromError(error: unknown) {
    return { error };
  }

  override render() {
    if (this.state.error !== undefined) {
      return <ErrorAlert title="This page failed to load" error={this.state.error} onRetry={() => this.setState({ error: undefined })} />;
    }
    return this.props.children;
  }
}
